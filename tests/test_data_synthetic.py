"""Synthetic worlds: shapes, ground truth consistent with the log, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from rayrec.data import SyntheticConfig, load_dataset, make_world
from rayrec.errors import ConfigError


def test_shapes_dtypes_and_ground_truth() -> None:
    w = make_world(n_users=500, n_items=400, n_categories=8, dim=12, seed=5)
    ds = w.dataset
    assert (ds.n_users, ds.n_items, ds.n_categories) == (500, 400, 8)
    assert w.user_factors.shape == (500, 12) and w.user_factors.dtype == np.float32
    assert w.item_factors.shape == (400, 12) and w.item_factors.dtype == np.float32
    assert w.item_bias.shape == (400,) and w.item_bias.dtype == np.float32
    assert np.isclose(w.item_exposure.sum(), 1.0)
    assert ds.categories[np.arange(400), w.item_category].all()  # primary category is in the multi-hot
    assert 1.0 <= ds.categories.sum(1).mean() <= 1.5
    df = ds.interactions
    assert not df.duplicated(["user", "item"]).any()
    assert df.equals(df.sort_values(["user", "timestamp"], kind="stable"))
    assert set(df["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 15 < ds.n_interactions / ds.n_users <= 20 + 1e-9
    assert np.bincount(df["user"], minlength=500).min() >= 1


def test_log_follows_the_latent_truth() -> None:
    w = make_world(n_users=2_000, n_items=1_000, zipf=1.2, seed=0)
    df = w.dataset.interactions
    aff = w.affinity(df["user"].to_numpy(), df["item"].to_numpy())
    # ratings are a noisy quantisation of affinity, so they must correlate strongly with it
    assert np.corrcoef(aff, df["rating"])[0, 1] > 0.8
    # accepted items have higher affinity than random pairs
    rng = np.random.default_rng(0)
    rand = w.affinity(rng.integers(0, 2_000, 20_000), rng.integers(0, 1_000, 20_000))
    assert aff.mean() > rand.mean() + 0.3
    # exposure is Zipf: the most exposed decile of items gets far more interactions than the least
    order = np.argsort(-w.item_exposure)
    pop = w.dataset.item_popularity()
    assert pop[order[:100]].sum() > 10 * pop[order[-100:]].sum()


def test_reproducible_by_seed_and_config() -> None:
    a = make_world(SyntheticConfig(n_users=300, n_items=200, seed=11, chunk_users=64))
    b = make_world(n_users=300, n_items=200, seed=11, chunk_users=64)
    c = make_world(n_users=300, n_items=200, seed=12, chunk_users=64)
    assert a.dataset.interactions.equals(b.dataset.interactions)
    assert np.array_equal(a.user_factors, b.user_factors) and np.array_equal(
        a.dataset.categories, b.dataset.categories
    )
    assert not a.dataset.interactions.equals(c.dataset.interactions)


def test_registry_and_config_errors() -> None:
    ds = load_dataset("synthetic", n_users=50, n_items=60)
    assert (ds.n_users, ds.n_items) == (50, 60)
    assert ds.meta["users_short"] >= 0 and ds.meta["seed"] == 0
    with pytest.raises(ConfigError, match="drop --path"):
        load_dataset("synthetic", "somewhere")
    with pytest.raises(ConfigError):
        make_world(min_interactions=30, mean_interactions=20)
