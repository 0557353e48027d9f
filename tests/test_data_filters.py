"""k-core: what it keeps, and that it reports what it removed (imbalance: test_data_imbalance.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayrec.data import build_dataset, k_core, make_world
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
