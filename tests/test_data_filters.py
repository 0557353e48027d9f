"""k-core and the long-tail imbalance transform: what they keep, and that they report what they removed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayrec.data import build_dataset, head_items, k_core, long_tail_imbalance, make_world
from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError


def _chain() -> Dataset:
    """Users a,b,c share items x,y; user d only rates z, and z is also rated by a.

    With k=2: d (1 interaction) goes, which leaves z with one interaction, so z goes in the second pass,
    and then a still has x,y. Catalog item w was never rated.
    """
    rows = [("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "y"), ("d", "z")]
    df = pd.DataFrame(rows, columns=["user", "item"]).assign(rating=1.0, timestamp=np.arange(len(rows)))
    return build_dataset("chain", df, item_ids=np.array(["w", "x", "y", "z"]))


def test_k_core_reaches_a_fixpoint_and_reports_it() -> None:
    ds = _chain()
    out, report = k_core(ds, min_user=2, min_item=2)
    assert list(out.user_ids) == ["a", "b", "c"] and list(out.item_ids) == ["x", "y"]
    assert out.n_interactions == 6 and out.categories.shape == (2, 0)
    assert report.iterations == 3  # d goes, then z, then nothing changes
    assert report.removed("interactions") == 2 and report.removed("active users") == 1
    assert report.removed("catalog items") == 2  # z and the never-rated w
    assert out.meta["filters"][-1]["filter"] == "k_core"
    assert "removed 2 interactions" in str(report)
    counts = np.bincount(out.interactions["user"]), np.bincount(out.interactions["item"])
    assert counts[0].min() >= 2 and counts[1].min() >= 2


def test_k_core_without_compaction_keeps_ids() -> None:
    ds = make_world(n_users=200, n_items=150, seed=1).dataset
    out, report = k_core(ds, min_user=10, min_item=10, compact_ids=False)
    assert (out.n_users, out.n_items) == (ds.n_users, ds.n_items)
    kept = out.interactions
    assert np.bincount(kept["user"])[np.unique(kept["user"])].min() >= 10
    assert np.bincount(kept["item"])[np.unique(kept["item"])].min() >= 10
    assert report.before["interactions"] == ds.n_interactions and report.after["interactions"] == len(kept)
    with pytest.raises(ConfigError):
        k_core(ds, min_user=0)


@pytest.fixture(scope="module")
def train() -> Dataset:
    return make_world(n_users=400, n_items=300, zipf=1.1, seed=2).dataset


def test_imbalance_keeps_head_and_p_percent_of_tail(train: Dataset) -> None:
    head = head_items(train, 0.2)
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
