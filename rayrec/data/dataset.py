"""The one in-memory dataset type every layer above consumes.

Ids are remapped to contiguous ints (``0..n_users-1``, ``0..n_items-1``) so they can index embedding
tables and action spaces directly; the original ids are kept so results can be reported in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from rayrec.errors import DataError

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")


@dataclass
class Dataset:
    """Interactions, item catalog and optional user features, with contiguous internal ids.

    interactions: DataFrame with int64 ``user``, ``item``, float32 ``rating``, int64 ``timestamp``,
        sorted by (user, timestamp) so per-user sequences are contiguous and in time order.
    categories: (n_items, n_categories) bool multi-hot matrix; row i belongs to internal item i.
    user_ids / item_ids: original id of each internal id (index = internal id).
    item_titles / item_years: catalog text, aligned with internal item ids ("" / -1 when unknown).
    user_features: optional DataFrame indexed by internal user id.
    """

    name: str
    interactions: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    categories: np.ndarray
    category_names: list[str]
    item_titles: np.ndarray
    item_years: np.ndarray
    user_features: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_items = len(self.item_ids)
        if self.categories.shape != (n_items, len(self.category_names)):
            raise DataError(
                f"{self.name}: category matrix has shape {self.categories.shape}, expected "
                f"({n_items}, {len(self.category_names)})"
            )
        if len(self.item_titles) != n_items or len(self.item_years) != n_items:
            raise DataError(f"{self.name}: item titles/years must have one entry per item ({n_items})")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_categories(self) -> int:
        return len(self.category_names)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    def item_popularity(self) -> np.ndarray:
        """Interaction count of every item (zeros for items never interacted with)."""
        return np.bincount(self.interactions["item"].to_numpy(), minlength=self.n_items)

    def user_sequences(self) -> list[np.ndarray]:
        """Each user's items in time order (index = internal user id)."""
        users = self.interactions["user"].to_numpy()
        items = self.interactions["item"].to_numpy()
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def with_interactions(self, interactions: pd.DataFrame, **meta: object) -> Dataset:
        """Same catalog and users, other interactions (splits and filters use this)."""
        return replace(self, interactions=sort_interactions(interactions), meta={**self.meta, **meta})

    def summary(self) -> dict[str, float | int | str]:
        pop = self.item_popularity()
        n = self.n_interactions
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "categories": self.n_categories,
            "density": n / max(1, self.n_users * self.n_items),
            "items_never_seen": int((pop == 0).sum()),
            "rating_min": float(self.interactions["rating"].min()) if n else float("nan"),
            "rating_max": float(self.interactions["rating"].max()) if n else float("nan"),
            "mean_items_per_user": n / max(1, self.n_users),
            "mean_categories_per_item": float(self.categories.sum(1).mean()) if self.n_items else 0.0,
        }


def sort_interactions(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes and order: by user, then timestamp (stable, so ties keep file order)."""
    out = pd.DataFrame(
        {
            "user": df["user"].to_numpy(np.int64),
            "item": df["item"].to_numpy(np.int64),
            "rating": df["rating"].to_numpy(np.float32),
            "timestamp": df["timestamp"].to_numpy(np.int64),
        }
    )
    return out.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)


def build_dataset(
    name: str,
    interactions: pd.DataFrame,
    *,
    item_ids: np.ndarray | None = None,
    categories: np.ndarray | None = None,
    category_names: list[str] | None = None,
    item_titles: np.ndarray | None = None,
    item_years: np.ndarray | None = None,
    user_ids: np.ndarray | None = None,
    user_features: pd.DataFrame | None = None,
    meta: dict | None = None,
) -> Dataset:
    """Remap raw ids to contiguous ints and assemble a :class:`Dataset`.

    ``interactions`` holds raw ``user``/``item`` ids. Catalog arrays (``categories``, titles, years) are
    aligned with ``item_ids`` (the raw catalog ids); items in the catalog but never interacted with are
    kept, since a recommender may still propose them. Interactions naming an item outside a given
    catalog raise, since they would otherwise be dropped silently. ``user_features`` is indexed by raw
    user id.
    """
    raw_users = interactions["user"].to_numpy()
    raw_items = interactions["item"].to_numpy()
    if user_ids is None:
        user_ids = np.unique(raw_users)
    if item_ids is None:
        item_ids = np.unique(raw_items)
        if categories is not None:
            raise DataError(f"{name}: categories given without the item ids they belong to")
    item_ids = np.asarray(item_ids)
    user_ids = np.asarray(user_ids)
    user_index = pd.Index(user_ids)
    item_index = pd.Index(item_ids)
    if not item_index.is_unique:
        dup = item_index[item_index.duplicated()][0]
        raise DataError(f"{name}: item id {dup!r} appears twice in the item catalog")
    u = user_index.get_indexer(raw_users)
    i = item_index.get_indexer(raw_items)
    if (i < 0).any():
        bad = raw_items[i < 0]
        raise DataError(
            f"{name}: {len(bad)} interactions name items missing from the item catalog "
            f"(first: {bad[0]!r}); add them to the catalog or filter them out first"
        )
    if (u < 0).any():
        bad = raw_users[u < 0]
        raise DataError(f"{name}: {len(bad)} interactions name unknown users (first: {bad[0]!r})")
    n_items = len(item_ids)
    if categories is None:
        categories = np.zeros((n_items, 0), dtype=bool)
        category_names = []
    feats = None
    if user_features is not None:
        feats = user_features.reindex(user_ids).reset_index(drop=True)
    mapped = interactions.assign(user=u, item=i)
    return Dataset(
        name=name,
        interactions=sort_interactions(mapped),
        user_ids=user_ids,
        item_ids=item_ids,
        categories=np.asarray(categories, dtype=bool),
        category_names=list(category_names or []),
        item_titles=np.asarray(item_titles if item_titles is not None else [""] * n_items, dtype=object),
        item_years=np.asarray(item_years if item_years is not None else [-1] * n_items, dtype=np.int64),
        user_features=feats,
        meta=dict(meta or {}),
    )


def multi_hot(tags: list[list[int]]) -> tuple[np.ndarray, list[str]]:
    """(n_items, n_tags) bool matrix over the tags that occur, in ascending tag id; names ``tag<k>``.

    Loaders whose files give each item a list of numeric tag ids (KuaiRec, KuaiRand) share this, so tag
    ``k`` is called ``tag<k>`` everywhere and absent tags take no column.
    """
    vocab = sorted({t for row in tags for t in row})
    col = {t: k for k, t in enumerate(vocab)}
    out = np.zeros((len(tags), len(vocab)), dtype=bool)
    rows = np.repeat(np.arange(len(tags)), [len(r) for r in tags])
    cols = np.fromiter((col[t] for r in tags for t in r), dtype=np.int64, count=len(rows))
    out[rows, cols] = True
    return out, [f"tag{t}" for t in vocab]
