"""The long-tail imbalance transform of LAAC's imbalanced-data study.

Keep every training interaction on head items (the top ``head_fraction`` of the catalog by training
popularity) and only a ``keep`` share of those on tail items, so a method's gain on sparse, long-tail
data can be measured while the test set stays unchanged. The head is fixed on the data *before* the
cut and stored in ``meta['head_items']``, so thinning the tail never promotes an item into the head
and the evaluator (``rayrec.eval.evaluate_ranking``) scores tail coverage on the very same partition.

The head/tail rule itself is ``rayrec.popularity.head_mask``, the one definition shared with ``eval``
and ``envs`` (a leaf module, since ``data`` and ``eval`` may not import each other).
"""

from __future__ import annotations

import numpy as np

from rayrec.data.dataset import Dataset
from rayrec.data.filters import FilterReport, record
from rayrec.errors import ConfigError
from rayrec.popularity import head_mask


def long_tail_imbalance(
    train: Dataset, keep: float, head_fraction: float = 0.2, seed: int = 0
) -> tuple[Dataset, FilterReport]:
    """Keep all head interactions and exactly ``round(keep * n_tail)`` tail ones, drawn uniformly.

    The same seed keeps the same interactions. The head, ``head_mask(train.item_popularity(),
    head_fraction)`` on the untouched ``train``, is stored in ``meta['head_items']``.
    """
    if not 0 <= keep <= 1:
        raise ConfigError(f"keep must be a share in [0, 1], not {keep}")
    head = head_mask(train.item_popularity(), head_fraction)
    df = train.interactions
    is_head = head[df["item"].to_numpy()]
    tail_rows = np.flatnonzero(~is_head)
    rng = np.random.default_rng(seed)
    kept_tail = rng.choice(tail_rows, size=round(keep * len(tail_rows)), replace=False)
    mask = is_head.copy()
    mask[kept_tail] = True
    out = train.with_interactions(df[mask], head_items=head)
    params = {
        "keep": keep,
        "head_fraction": head_fraction,
        "seed": seed,
        "tail_interactions": len(tail_rows),
        "head_items": int(head.sum()),
    }
    return out, record(train, out, "long_tail_imbalance", params)
