"""The two summaries every experiment prints: offline ranking quality and online long-term quality.

Keys are fixed strings so tables, Tune objectives and JSON run records from different algorithms line
up column for column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rayrec.errors import ConfigError, DataError
from rayrec.eval.longterm import mean_ci95, ratio_ci95, session_stats
from rayrec.eval.metrics import (
    Ragged,
    as_ragged,
    catalog_coverage,
    category_entropy,
    exposure_gini,
    hit_matrix,
    hit_rate,
    intra_list_distance,
    ndcg,
    novelty,
    precision,
    recall,
    reciprocal_rank,
    relevant_counts,
    tail_coverage,
    tail_share,
)
from rayrec.popularity import head_mask


def ranking_report(
    topk: np.ndarray,
    relevant: Sequence[np.ndarray] | Ragged,
    *,
    train_popularity: np.ndarray,
    categories: np.ndarray,
    n_train_users: int,
    k: int | None = None,
    item_vectors: np.ndarray | None = None,
    head_fraction: float = 0.2,
    head_items: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy, diversity and novelty of top-k lists in one dict (formulas in ``rayrec.eval.metrics``).

    topk: (U, k') item ids ranked best first, seen items already excluded; the first k columns are
        scored (k defaults to k'). relevant: each user's held-out items (sequence or ``Ragged``).
    train_popularity: (n_items,) training interaction counts (defines novelty and, unless
        ``head_items`` is given, the long tail: all but the top ``head_fraction`` of items, see
        ``rayrec.popularity.head_mask``). categories: (n_items, n_cat) bool multi-hot.
    head_items: (n_items,) bool head fixed elsewhere, e.g. on the untouched training set of a
        long-tail study (``meta['head_items']``); the tail is its complement.
    item_vectors: if given, ILD uses cosine distance of these vectors instead of genre Jaccard.

    HR, NDCG, MRR, P and R are means over users with at least one held-out item (the metrics are
    undefined for the others); ILD, novelty and category entropy are means over all U lists;
    coverage, tail coverage/share and Gini are computed over the union of all lists.
    """
    topk = np.asarray(topk)
    if topk.ndim != 2 or not np.issubdtype(topk.dtype, np.integer) or topk.shape[0] == 0:
        raise DataError(f"top-k lists must be a non-empty (users, k) integer array, got shape {topk.shape}")
    k = topk.shape[1] if k is None else k
    if not 1 <= k <= topk.shape[1]:
        raise ConfigError(f"k={k} must be between 1 and the list length {topk.shape[1]}")
    topk = topk[:, :k]
    popularity = np.asarray(train_popularity)
    n_items = len(popularity)
    if np.shape(categories)[0] != n_items:
        raise DataError(
            f"categories have {np.shape(categories)[0]} rows but train_popularity has {n_items} items; "
            "both must be indexed by the same internal item ids"
        )
    if topk.min() < 0 or topk.max() >= n_items:
        raise DataError(f"recommended item ids must lie in [0, {n_items}); map raw ids to internal ids first")
    ordered = np.sort(topk, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise DataError("a top-k list repeats an item, which would count its hit twice; deduplicate lists")

    held_out = as_ragged(relevant)
    n_relevant = relevant_counts(held_out)
    evaluable = n_relevant > 0
    if not evaluable.any():
        raise DataError("no user has a held-out item; check the split before evaluating")
    hits = hit_matrix(topk, held_out)[evaluable]
    n_rel = n_relevant[evaluable]
    if head_items is None:
        tail = ~head_mask(popularity, head_fraction)
    else:
        tail = ~np.asarray(head_items, dtype=bool)
        if tail.shape != (n_items,):
            raise DataError(f"head_items must have one flag per item ({n_items}), got shape {tail.shape}")
    ild = (
        intra_list_distance(topk, item_vectors=item_vectors)
        if item_vectors is not None
        else intra_list_distance(topk, categories=categories)
    )
    return {
        f"HR@{k}": float(hit_rate(hits).mean()),
        f"NDCG@{k}": float(ndcg(hits, n_rel).mean()),
        f"MRR@{k}": float(reciprocal_rank(hits).mean()),
        f"P@{k}": float(precision(hits).mean()),
        f"R@{k}": float(recall(hits, n_rel).mean()),
        f"ILD@{k}": float(ild.mean()),
        "coverage": catalog_coverage(topk, n_items),
        "tail_coverage": tail_coverage(topk, tail),
        "tail_share": tail_share(topk, tail),
        "novelty": float(novelty(topk, popularity, n_train_users).mean()),
        "gini": exposure_gini(topk, n_items),
        "cat_entropy": float(category_entropy(topk, categories).mean()),
    }


def session_report(
    rewards: Sequence[np.ndarray], item_categories: Sequence[np.ndarray], dominating: np.ndarray
) -> dict[str, tuple[float, float]]:
    """Long-term metrics of simulated sessions as (mean, 95% CI half-width), over sessions s = 1..n.

    R_tra = (1/n) Σ_s Σ_t r_st;  Len = (1/n) Σ_s len_s;  R_each = Σ_s Σ_t r_st / Σ_s len_s (= R_tra/Len);
    cat_coverage, cat_entropy = means of the per-session values (``session_stats``);
    MCD = Σ_s #{t : c_st ∩ D ≠ ∅} / Σ_s len_s, D = ``dominating`` (see ``dominating_categories``).
    Means get x̄ ± 1.96 sd/√n; the pooled ratios R_each and MCD get the delta-method interval. The
    half-width is NaN for a single session.
    """
    stats = session_stats(rewards, item_categories, dominating)
    return {
        "R_tra": mean_ci95(stats.returns),
        "R_each": ratio_ci95(stats.returns, stats.lengths),
        "Len": mean_ci95(stats.lengths),
        "cat_coverage": mean_ci95(stats.cat_coverage),
        "cat_entropy": mean_ci95(stats.cat_entropy),
        "MCD": ratio_ci95(stats.dominated, stats.lengths),
    }
