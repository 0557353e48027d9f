"""Response models: the MF fit on ml-100k meets the issue's RMSE bar, scoring is consistent across
shapes, and every kind survives a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from rayrec.data import load_dataset, random_holdout
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.fitting import fit_response_model
from rayrec.envs.response import (
    LatentResponseModel,
    MatrixResponseModel,
    MFResponseModel,
    ResponseModel,
    TwoTowerResponseModel,
)
from rayrec.errors import AssetError, ConfigError
from rayrec.eval.classification import log_loss, roc_auc


@pytest.fixture(scope="module")
def ml100k():
    return load_dataset("ml-100k")


@pytest.fixture(scope="module")
def holdout(ml100k):
    return random_holdout(ml100k, test_frac=0.1, seed=0)


@pytest.fixture(scope="module")
def mf_fit(holdout):
    return fit_response_model(*holdout, kind="mf")


def test_mf_on_ml100k_meets_the_rmse_bar(mf_fit):
    model, report = mf_fit
    assert isinstance(model, MFResponseModel)
    assert report["rmse"] <= 0.98, report
    assert report["rmse"] < report["rmse_global_mean"] - 0.15  # it learned more than the mean rating
    assert report["feedback"] == "explicit" and (report["scale_min"], report["scale_max"]) == (1.0, 5.0)
    assert report["auc"] > 0.75
    assert 1 <= report["best_epoch"] <= report["epochs"] <= 60
    assert report["n_train"] + report["n_valid"] + report["n_test"] == 100_000


def test_two_tower_learns_on_a_subset(ml100k):
    small = ml100k.with_interactions(ml100k.interactions.iloc[:20_000])
    train, test = random_holdout(small, test_frac=0.1, seed=1)
    model, report = fit_response_model(train, test, kind="two_tower", max_epochs=15)
    assert isinstance(model, TwoTowerResponseModel)
    assert report["rmse"] < report["rmse_global_mean"]
    assert report["auc"] > 0.6


def test_scores_agree_across_shapes_and_stay_in_unit_interval(mf_fit):
    model, _ = mf_fit
    rng = np.random.default_rng(0)
    users = rng.integers(0, model.n_users, 64)
    slates = rng.integers(0, model.n_items, (64, 5))
    all_scores = model.score_all(users)
    assert all_scores.shape == (64, model.n_items) and all_scores.dtype == np.float32
    assert all_scores.min() >= 0.0 and all_scores.max() <= 1.0
    np.testing.assert_allclose(
        model.score(users, slates), np.take_along_axis(all_scores, slates, 1), atol=1e-5
    )
    np.testing.assert_allclose(
        model.score(users, slates[:, 0]), all_scores[np.arange(64), slates[:, 0]], atol=1e-5
    )


def test_score_is_the_normalised_predicted_rating():
    model = MFResponseModel(
        np.array([[1.0, 0.0]]), np.array([[0.5, 0.0], [3.0, 0.0]]), np.zeros(1), np.zeros(2), global_bias=2.0
    )
    # ratings 2.5 and 5.0 (clipped at 5) -> (r - 1) / 4, the default 1-5 scale
    np.testing.assert_allclose(model.score(np.array([0]), np.array([[0, 1]])), [[0.375, 1.0]])
    # on a 0-10 scale the same predictions are (r - 0) / 10
    ten = MFResponseModel(
        np.array([[1.0, 0.0]]), np.array([[0.5, 0.0], [3.0, 0.0]]), global_bias=2.0, scale_min=0, scale_max=10
    )
    np.testing.assert_allclose(ten.score(np.array([0]), np.array([[0, 1]])), [[0.25, 0.5]])


def test_latent_model_is_sigmoid_of_dot_plus_bias():
    rng = np.random.default_rng(3)
    u, v, b = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.normal(size=6)
    expected = 1 / (1 + np.exp(-(u @ v.T + b)))
    np.testing.assert_allclose(LatentResponseModel(u, v, b).score_all(np.arange(4)), expected, rtol=1e-5)


def test_matrix_model_fills_missing_cells_with_the_observed_mean_and_normalises():
    m = MatrixResponseModel(np.array([[1.0, np.nan], [5.0, np.inf]]), max_value=5.0)
    np.testing.assert_allclose(m.score_all(np.array([0, 1])), [[0.2, 0.6], [1.0, 0.6]])
    assert m.report["missing_cells"] == 2


@pytest.mark.parametrize("kind", ["mf", "latent", "matrix"])
def test_save_load_round_trip(tmp_path, kind, mf_fit):
    rng = np.random.default_rng(0)
    model = {
        "mf": mf_fit[0],
        "latent": LatentResponseModel(rng.normal(size=(5, 2)), rng.normal(size=(7, 2)), rng.normal(size=7)),
        "matrix": MatrixResponseModel(rng.random((5, 7)) * 3, max_value=3.0),
    }[kind]
    loaded = ResponseModel.load(model.save(tmp_path / kind))
    assert type(loaded) is type(model) and loaded.report == model.report
    users = np.arange(min(5, model.n_users))
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))
    carried = ResponseModel.from_payload(model.to_payload())  # how an env_config carries it
    np.testing.assert_array_equal(carried.score_all(users), model.score_all(users))
    assert carried.digest() == model.digest() == loaded.digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [kind]  # the atomic save leaves no temp dir


def test_cached_model_is_fitted_once_then_loaded(tmp_path):
    first, path = cached_response_model("ml-100k", "mf", tmp_path / "art")
    stamp = (path / "weights.npz").stat().st_mtime_ns
    again, _ = cached_response_model("ml-100k", "mf", path)
    assert (path / "weights.npz").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.score_all(np.arange(3)), first.score_all(np.arange(3)))


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5]), np.array([0, 1, 1])) == 0.5
    assert roc_auc(np.array([0.2, 0.4, 0.3]), np.array([1, 0, 1])) == 0.0
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_log_loss_by_hand():
    assert log_loss(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(np.log(2))
    assert log_loss(np.array([0.9, 0.2]), np.array([1, 0])) == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)
    assert log_loss(np.array([1.0]), np.array([0])) == pytest.approx(-np.log(1e-7))  # clipped, finite


def test_errors_say_what_to_do(tmp_path, holdout):
    with pytest.raises(AssetError, match="rayrec simulator fit"):
        ResponseModel.load(tmp_path)
    with pytest.raises(ConfigError, match="unknown response-model setting"):
        fit_response_model(*holdout, kind="mf", learning_rate=0.1)
    with pytest.raises(ConfigError, match="mf' or 'two_tower"):
        fit_response_model(*holdout, kind="svd")
