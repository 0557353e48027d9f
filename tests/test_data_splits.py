"""Splits on a real-shaped synthetic dataset: sizes, no leakage, time order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayrec.data import leave_last_out, make_world, random_holdout, temporal
from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return make_world(n_users=300, n_items=200, seed=3).dataset


def _keys(d: Dataset) -> set[tuple[int, int, int]]:
    df = d.interactions
    return set(zip(df["user"], df["item"], df["timestamp"]))


def test_leave_last_out_sizes_order_and_no_leakage(ds: Dataset) -> None:
    split = leave_last_out(ds, n_valid=1, n_test=2, min_train=3)
    counts = np.bincount(ds.interactions["user"], minlength=ds.n_users)
    eligible = int((counts >= 6).sum())
    assert split.sizes() == {
        "train": ds.n_interactions - 3 * eligible,
        "valid": eligible,
        "test": 2 * eligible,
    }
    assert split.train.meta["users_train_only"] == ds.n_users - eligible
    assert not (_keys(split.train) & _keys(split.test)) and not (_keys(split.valid) & _keys(split.test))
    assert _keys(split.train) | _keys(split.valid) | _keys(split.test) == _keys(ds)
    last = pd.concat([split.train.interactions, split.valid.interactions]).groupby("user")["timestamp"].max()
    first_test = split.test.interactions.groupby("user")["timestamp"].min()
    assert (last.loc[first_test.index] <= first_test).all()
    assert split.test.n_items == ds.n_items and split.test.n_users == ds.n_users  # catalog kept


def test_temporal_cut_is_global(ds: Dataset) -> None:
    split = temporal(ds, valid_frac=0.1, test_frac=0.2)
    n = ds.n_interactions
    assert split.sizes() == {
        "train": n - round(0.1 * n) - round(0.2 * n),
        "valid": round(0.1 * n),
        "test": round(0.2 * n),
    }
    assert split.train.interactions["timestamp"].max() <= split.valid.interactions["timestamp"].min()
    assert split.valid.interactions["timestamp"].max() <= split.test.interactions["timestamp"].min()
    assert _keys(split.train) | _keys(split.valid) | _keys(split.test) == _keys(ds)


def test_random_holdout_is_seeded(ds: Dataset) -> None:
    a_train, a_test = random_holdout(ds, test_frac=0.25, seed=1)
    b_train, b_test = random_holdout(ds, test_frac=0.25, seed=1)
    assert a_test.interactions.equals(b_test.interactions)
    assert a_train.n_interactions + a_test.n_interactions == ds.n_interactions
    assert 0.2 < a_test.n_interactions / ds.n_interactions < 0.3
    assert not a_test.interactions.equals(random_holdout(ds, test_frac=0.25, seed=2)[1].interactions)


def test_bad_split_arguments(ds: Dataset) -> None:
    with pytest.raises(ConfigError):
        leave_last_out(ds, n_test=0)
    with pytest.raises(ConfigError):
        temporal(ds, valid_frac=0.5, test_frac=0.5)
