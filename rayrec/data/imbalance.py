"""The long-tail imbalance transform of LAAC's imbalanced-data study.

Keep every training interaction on head items (the top ``head_frac`` of the catalog by training
popularity) and only a ``keep`` share of those on tail items, so a method's gain on sparse, long-tail
data can be measured while the test set stays unchanged. The head is fixed on the data *before* the
cut, so thinning the tail never promotes an item into the head.
"""

from __future__ import annotations

import math

import numpy as np

from rayrec.data.dataset import Dataset
from rayrec.data.filters import FilterReport, record
from rayrec.errors import ConfigError


def head_items(ds: Dataset, head_frac: float = 0.2) -> np.ndarray:
    """Bool mask of the ``ceil(head_frac * n_items)`` most popular catalog items (ties: lower id first)."""
    if not 0 < head_frac < 1:
        raise ConfigError("head_frac must be in (0, 1)")
    order = np.argsort(-ds.item_popularity(), kind="stable")
    mask = np.zeros(ds.n_items, dtype=bool)
    mask[order[: math.ceil(head_frac * ds.n_items)]] = True
    return mask


def long_tail_imbalance(
    train: Dataset, keep: float, head_frac: float = 0.2, seed: int = 0
) -> tuple[Dataset, FilterReport]:
    """Keep all head interactions and exactly ``round(keep * n_tail)`` tail ones, drawn uniformly.

    The same seed keeps the same interactions. The head mask is stored in ``meta['head_items']`` so
    evaluation can use the very same head/tail partition.
    """
    if not 0 <= keep <= 1:
        raise ConfigError(f"keep must be a share in [0, 1], not {keep}")
    head = head_items(train, head_frac)
    df = train.interactions
    tail_rows = np.flatnonzero(~head[df["item"].to_numpy()])
    rng = np.random.default_rng(seed)
    kept_tail = rng.choice(tail_rows, size=round(keep * len(tail_rows)), replace=False)
    mask = head[df["item"].to_numpy()]
    mask[kept_tail] = True
    out = train.with_interactions(df[mask], head_items=head)
    params = {"keep": keep, "head_frac": head_frac, "seed": seed, "tail_interactions": len(tail_rows)}
    return out, record(train, out, "long_tail_imbalance", params)
