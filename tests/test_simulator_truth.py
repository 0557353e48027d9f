"""The simulator's ground truth follows the data: implicit logs and 0/1 clicks give rewards a greedy
policy can earn (not ~0), every kind is reachable by name, and the cache keeps apart what differs.

The CSVs are drawn from a small synthetic world (its factors are the truth the clicks come from) and
written by the test; caches go to a temporary ``RAYREC_HOME``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rayrec.data import load_dataset, make_world
from rayrec.envs.artifacts import (
    build_response_model,
    cache_key,
    cached_response_model,
    default_artifact_dir,
    require_categories,
)
from rayrec.envs.config import SimConfig
from rayrec.envs.feedback import FitConfig, feedback_scale
from rayrec.envs.registration import create_env, make_env_config
from rayrec.envs.response import LatentResponseModel, MatrixResponseModel
from rayrec.envs.rollout import simulate_policy
from rayrec.errors import ConfigError

SIM = SimConfig(quit_model="temper", max_turn=10, seed=0)


@pytest.fixture(autouse=True)
def temp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RAYREC_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=300, n_items=200, n_categories=8, mean_interactions=20, seed=0)


@pytest.fixture(scope="module")
def files(world, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """items.csv (categories), implicit.csv (no rating column) and clicks.csv (0/1 exposures)."""
    d = tmp_path_factory.mktemp("csv")
    ds = world.dataset
    cats = ["|".join(ds.category_names[c] for c in np.flatnonzero(row)) for row in ds.categories]
    item_ids = [f"i{i}" for i in range(ds.n_items)]
    pd.DataFrame({"item": item_ids, "categories": cats}).to_csv(d / "items.csv", index=False)
    inter = ds.interactions
    pd.DataFrame(
        {"user": inter["user"], "item": "i" + inter["item"].astype(str), "timestamp": inter["timestamp"]}
    ).to_csv(d / "implicit.csv", index=False)
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(ds.n_users), 40)
    items = rng.integers(0, ds.n_items, len(users))
    clicks = (rng.random(len(users)) < 1 / (1 + np.exp(-world.affinity(users, items)))).astype(int)
    pd.DataFrame(
        {
            "user": users,
            "item": [f"i{i}" for i in items],
            "rating": clicks,
            "timestamp": np.arange(len(users)),
        }
    ).to_csv(d / "clicks.csv", index=False)
    return {"items": d / "items.csv", "implicit": d / "implicit.csv", "clicks": d / "clicks.csv"}


def _csv(files: dict[str, Path], which: str):
    options = {"items_path": str(files["items"])}
    return load_dataset("csv", files[which], **options), options


@pytest.mark.parametrize(("which", "feedback"), [("implicit", "implicit"), ("clicks", "binary")])
def test_greedy_earns_clearly_more_than_random_on_implicit_and_click_logs(files, which, feedback):
    ds, options = _csv(files, which)
    assert feedback_scale(ds).kind == feedback
    model, path = cached_response_model(
        "csv", "mf", dataset_path=files[which], loader_options=options, data=ds
    )
    report = model.report
    assert report["feedback"] == feedback
    assert report["log_loss"] < report["log_loss_base_rate"]  # the report speaks log loss, not RMSE
    assert report["auc"] > 0.55 and "rmse" not in report
    greedy, _ = simulate_policy(ds, model, "greedy", SIM, 200)
    random, _ = simulate_policy(ds, model, "random", SIM, 200)
    g, r = greedy["R_each"][0], random["R_each"][0]
    assert r > 0.1 and g > r + 0.1, (g, r)  # not ~0, and greedy clearly ahead


def test_click_model_tracks_the_worlds_truth(files, world):
    ds, options = _csv(files, "clicks")
    model, _ = cached_response_model(
        "csv", "mf", dataset_path=files["clicks"], loader_options=options, data=ds
    )
    items = np.array([int(i[1:]) for i in ds.item_ids])
    users = ds.user_ids.astype(int)
    truth = 1 / (
        1 + np.exp(-(world.user_factors[users] @ world.item_factors[items].T + world.item_bias[items]))
    )
    assert np.corrcoef(model.score_all(np.arange(ds.n_users)).ravel(), truth.ravel())[0, 1] > 0.3


def test_explicit_scale_is_the_datasets_own_min_and_max(world):
    ds = world.dataset  # ratings 1..5 drawn from the affinity
    scale = feedback_scale(ds)
    assert (scale.kind, scale.low, scale.high) == ("explicit", 1.0, 5.0)
    shifted = ds.with_interactions(ds.interactions.assign(rating=ds.interactions["rating"] * 2))  # 2..10
    assert (feedback_scale(shifted).low, feedback_scale(shifted).high) == (2.0, 10.0)
    ratio = ds.with_interactions(ds.interactions.assign(rating=np.linspace(0, 3, ds.n_interactions)))
    cont = feedback_scale(ratio, ratio_cap=2.0)
    assert (cont.kind, cont.high) == ("continuous", 2.0)
    np.testing.assert_allclose(cont.normalise(np.array([0.0, 1.0, 3.0])), [0.0, 0.5, 1.0])
    with pytest.raises(ConfigError, match="binary feedback needs ratings of both 0 and 1"):
        feedback_scale(ds, "binary")
    with pytest.raises(ConfigError, match="feedback must be"):
        FitConfig(feedback="stars")


def test_matrix_and_latent_kinds_are_built_from_the_dataset(files, world):
    ds, _ = _csv(files, "clicks")
    matrix = build_response_model(ds, "matrix")
    assert isinstance(matrix, MatrixResponseModel)
    df = ds.interactions
    cell = df.groupby(["user", "item"])["rating"].mean()
    (u, i), v = cell.index[0], cell.iloc[0]
    assert matrix.score(np.array([u]), np.array([i]))[0] == pytest.approx(v)
    assert matrix.report["observed_cells"] == len(cell)
    assert matrix.fill_value == pytest.approx(cell.mean())
    with pytest.raises(ConfigError, match="implicit feedback has no negative cells"):
        build_response_model(_csv(files, "implicit")[0], "matrix")

    synth = load_dataset("synthetic", n_users=300, n_items=200, n_categories=8, mean_interactions=20, seed=0)
    latent = build_response_model(synth, "latent")
    assert isinstance(latent, LatentResponseModel)
    users, items = np.arange(5), np.arange(5)
    np.testing.assert_allclose(
        latent.score(users, items), 1 / (1 + np.exp(-world.affinity(users, items))), rtol=1e-5
    )
    with pytest.raises(ConfigError, match="latent kind needs a synthetic world"):
        build_response_model(ds, "latent")


def test_same_name_other_path_gets_another_artifact(files, tmp_path):
    copy = tmp_path / "elsewhere" / "clicks.csv"
    copy.parent.mkdir()
    copy.write_bytes(files["clicks"].read_bytes())
    options = {"items_path": str(files["items"])}
    _, first = cached_response_model("csv", "mf", dataset_path=files["clicks"], loader_options=options)
    _, second = cached_response_model("csv", "mf", dataset_path=copy, loader_options=options)
    assert first != second and first.parent == second.parent
    recorded = json.loads((second / "response.json").read_text())["cache_key"]
    assert recorded == cache_key("csv", "mf", copy, options, FitConfig())
    assert recorded["dataset_path"] == str(copy.resolve())


def test_fit_settings_loader_options_and_kind_each_change_the_key():
    base = default_artifact_dir("ml-100k")
    assert base.name.startswith("ml-100k-mf-")
    others = {
        default_artifact_dir("ml-100k", fit=FitConfig(dim=8)),
        default_artifact_dir("ml-100k", fit=FitConfig(feedback="explicit")),
        default_artifact_dir("ml-100k", "two_tower"),
        default_artifact_dir("synthetic", loader_options={"n_users": 50}),
        default_artifact_dir("synthetic", loader_options={"n_users": 60}),
    }
    assert base not in others and len(others) == 5
    assert default_artifact_dir("ml-100k", fit=FitConfig()) == base  # defaults spelled out: same key


def test_a_dataset_without_categories_is_refused(files):
    bare = load_dataset("csv", files["implicit"])
    with pytest.raises(ConfigError, match="no item categories"):
        require_categories(bare)


@pytest.mark.parametrize("kind", ["latent", "matrix"])
def test_make_env_config_reaches_the_read_kinds(kind):
    options = {"n_users": 120, "n_items": 80, "n_categories": 6, "mean_interactions": 10}
    env_config = make_env_config("synthetic", kind=kind, loader_options=options, sim={"seed": 0})
    assert env_config["response"]["kind"] == kind
    env = create_env(env_config)
    obs, _ = env.reset(seed=0)
    _, reward, *_ = env.step(0)
    assert env.observation_space.contains(obs) and 0.0 <= reward <= 1.0
