"""Interaction filters that say what they removed: k-core and compaction.

Nothing leaves a dataset silently: every filter returns a :class:`FilterReport` next to the new
Dataset and records it in ``meta['filters']``, so a run dir shows exactly which data a model saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError


@dataclass(frozen=True)
class FilterReport:
    """Counts before and after one filter (see :func:`counts` for the quantities)."""

    filter: str
    params: dict
    before: dict[str, int]
    after: dict[str, int]
    iterations: int = 1

    def removed(self, quantity: str) -> int:
        return self.before[quantity] - self.after[quantity]

    def rows(self) -> list[dict[str, int | str]]:
        """One row per quantity, for ``render_table``."""
        return [
            {"quantity": q, "before": self.before[q], "after": self.after[q], "removed": self.removed(q)}
            for q in self.before
        ]

    def __str__(self) -> str:
        removed = ", ".join(f"{r['removed']:,} {r['quantity']}" for r in self.rows())
        return f"{self.filter}({self.params}) removed {removed} in {self.iterations} pass(es)"


def counts(ds: Dataset) -> dict[str, int]:
    """Interactions, users and items that have any, and the sizes of the user list and the catalog
    (which keep users/items without interactions unless a filter compacts them)."""
    df = ds.interactions
    return {
        "interactions": len(df),
        "active users": int(df["user"].nunique()),
        "active items": int(df["item"].nunique()),
        "user list": ds.n_users,
        "catalog items": ds.n_items,
    }


def record(before: Dataset, after: Dataset, name: str, params: dict, iterations: int = 1) -> FilterReport:
    """Build the report of a filter and append it to ``after.meta['filters']``."""
    report = FilterReport(name, params, counts(before), counts(after), iterations)
    after.meta["filters"] = [*before.meta.get("filters", []), asdict(report)]
    return report


def k_core(
    ds: Dataset, min_user: int = 5, min_item: int = 5, compact_ids: bool = True
) -> tuple[Dataset, FilterReport]:
    """Keep the largest subset where every user has >= ``min_user`` and every item >= ``min_item``
    interactions (removing one side can push the other under its bound, so this repeats to a fixpoint).

    compact_ids: also drop users and items left without interactions and renumber the rest, so embedding
        tables and action spaces shrink; original ids stay in ``user_ids``/``item_ids``.
    """
    if min_user < 1 or min_item < 1:
        raise ConfigError("k_core needs min_user >= 1 and min_item >= 1")
    users = ds.interactions["user"].to_numpy()
    items = ds.interactions["item"].to_numpy()
    keep = np.ones(len(users), dtype=bool)
    iterations = 0
    while True:
        iterations += 1
        user_count = np.bincount(users[keep], minlength=ds.n_users)
        item_count = np.bincount(items[keep], minlength=ds.n_items)
        still = keep & (user_count[users] >= min_user) & (item_count[items] >= min_item)
        if still.sum() == keep.sum():
            break
        keep = still
    params = {"min_user": min_user, "min_item": min_item}
    out = ds.with_interactions(ds.interactions[keep])
    if compact_ids:
        out = compact(out)
    return out, record(ds, out, "k_core", params, iterations)


def compact(ds: Dataset) -> Dataset:
    """Drop users and catalog items without interactions and renumber the rest contiguously, in order.

    The renumbering is monotone, so the (user, timestamp) order of interactions is unchanged.
    """
    df = ds.interactions
    users = np.unique(df["user"].to_numpy())
    items = np.unique(df["item"].to_numpy())
    user_map = np.full(ds.n_users, -1, dtype=np.int64)
    user_map[users] = np.arange(len(users))
    item_map = np.full(ds.n_items, -1, dtype=np.int64)
    item_map[items] = np.arange(len(items))
    features = None if ds.user_features is None else ds.user_features.iloc[users].reset_index(drop=True)
    return replace(
        ds,
        interactions=df.assign(user=user_map[df["user"].to_numpy()], item=item_map[df["item"].to_numpy()]),
        user_ids=ds.user_ids[users],
        item_ids=ds.item_ids[items],
        categories=ds.categories[items],
        item_titles=ds.item_titles[items],
        item_years=ds.item_years[items],
        user_features=features,
        meta=dict(ds.meta),
    )
