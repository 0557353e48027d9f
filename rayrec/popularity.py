"""Item popularity and the two non-personalised floors: the one home of the head/tail split, the
popularity ranking and uniform random scoring.

Why a leaf module: ``data`` (the long-tail imbalance study), ``eval`` (tail coverage and tail share)
and ``envs`` (the simulator's reference policies) all need the same head/tail split and the same
popularity order, but ``data`` and ``eval`` are independent bottom layers that may not import each
other, and ``envs`` may not import ``algorithms`` where the offline baselines live. Like
``rayrec.assets``, this module imports nothing of rayrec's but ``rayrec.errors``, so every layer can
use it without a back-edge.

Range convention (one for everyone): ``head_fraction`` lies in [0, 1]; the head is the
``ceil(head_fraction · n_items)`` most popular items, ties broken towards the lower item id, so the
split is reproducible when many items share a count. 0 gives no head, 1 puts every item in it.
"""

from __future__ import annotations

import math

import numpy as np

from rayrec.errors import ConfigError


def _counts(popularity: np.ndarray) -> np.ndarray:
    pop = np.asarray(popularity)
    if pop.ndim != 1:
        raise ConfigError(f"popularity must be one count per item, got shape {pop.shape}")
    return pop


def head_mask(popularity: np.ndarray, head_fraction: float = 0.2) -> np.ndarray:
    """(n_items,) bool: True for the ``ceil(head_fraction · n_items)`` most popular items.

    The long tail is ``~head_mask(...)``. Fix the split on the untouched training data: a study that
    thins the tail must not recompute it on the thinned data, or thinning would promote tail items.
    """
    if not 0.0 <= head_fraction <= 1.0:
        raise ConfigError(
            f"head_fraction={head_fraction} must lie in [0, 1] (0.2 = the top 20% of items are the head)"
        )
    pop = _counts(popularity)
    order = np.argsort(-pop, kind="stable")
    mask = np.zeros(len(pop), dtype=bool)
    mask[order[: math.ceil(head_fraction * len(pop))]] = True
    return mask


def popularity_scores(popularity: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """(n_items,) float32 scores that rank items by popularity, the most popular highest.

    Without ``rng`` the scores are the counts themselves (exact in float32 below 2^24 interactions per
    item) and equally popular items tie, leaving the order among them to the ranking step
    (``rayrec.eval.top_k``: arbitrary but deterministic); the offline popularity baseline's published
    figures are made this way. With ``rng`` the scores are distinct ranks (n_items for the most popular
    down to 1) with ties put in a random order drawn once (one ``rng.random(n_items)`` call), which is
    what the simulator's popularity policy wants: its choice among equally popular items must not be
    biased towards low ids, and the same seed must give the same order.
    """
    pop = _counts(popularity).astype(np.float64)
    if rng is None:
        return pop.astype(np.float32)
    n = len(pop)
    order = np.lexsort((rng.random(n), -pop))  # most popular first, ties in random order
    scores = np.empty(n, dtype=np.float32)
    scores[order] = np.arange(n, 0, -1, dtype=np.float32)
    return scores


def random_scores(rng: np.random.Generator, n_rows: int, n_items: int) -> np.ndarray:
    """(n_rows, n_items) float32 uniform scores in [0, 1): the random floor's ranking of the catalog.

    One draw per call from ``rng``, so a seeded generator gives the same scores for the same sequence
    of calls whoever calls it (offline recommender or simulator policy).
    """
    return rng.random((n_rows, n_items), dtype=np.float32)
