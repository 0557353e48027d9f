"""The long-tail imbalance transform: what it keeps, its report, and the head it hands to evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayrec.data import long_tail_imbalance, make_world
from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError
from rayrec.popularity import head_mask


@pytest.fixture(scope="module")
def train() -> Dataset:
    return make_world(n_users=400, n_items=300, zipf=1.1, seed=2).dataset


def test_imbalance_keeps_head_and_p_percent_of_tail(train: Dataset) -> None:
    head = head_mask(train.item_popularity(), 0.2)
    assert head.sum() == 60
    pop = train.item_popularity()
    assert pop[head].min() >= pop[~head].max()
    out, report = long_tail_imbalance(train, keep=0.3, seed=7)
    is_head = head[train.interactions["item"]]
    before_head = train.interactions[is_head]
    after = out.interactions
    after_head = after[head[after["item"]]]
    pd.testing.assert_frame_equal(after_head.reset_index(drop=True), before_head.reset_index(drop=True))
    n_tail = int((~is_head).sum())
    assert len(after) - len(after_head) == round(0.3 * n_tail)
    assert report.params["tail_interactions"] == n_tail
    assert report.removed("interactions") == n_tail - round(0.3 * n_tail)
    assert np.array_equal(out.meta["head_items"], head)


def test_imbalance_is_reproducible_by_seed(train: Dataset) -> None:
    a, _ = long_tail_imbalance(train, keep=0.5, seed=1)
    b, _ = long_tail_imbalance(train, keep=0.5, seed=1)
    c, _ = long_tail_imbalance(train, keep=0.5, seed=2)
    assert a.interactions.equals(b.interactions)
    assert not a.interactions.equals(c.interactions)
    assert long_tail_imbalance(train, keep=1.0)[0].n_interactions == train.n_interactions
    with pytest.raises(ConfigError):
        long_tail_imbalance(train, keep=1.5)


def test_imbalance_head_is_fixed_on_the_untouched_train_set(train: Dataset) -> None:
    out, report = long_tail_imbalance(train, keep=0.0, head_fraction=0.5, seed=0)
    np.testing.assert_array_equal(out.meta["head_items"], head_mask(train.item_popularity(), 0.5))
    assert report.params["head_items"] == 150 and report.params["head_fraction"] == 0.5
    assert set(out.interactions["item"]) <= set(np.flatnonzero(out.meta["head_items"]))
    for bad in ({"keep": 1.5}, {"keep": 0.5, "head_fraction": -0.1}):
        with pytest.raises(ConfigError):
            long_tail_imbalance(train, **bad)
