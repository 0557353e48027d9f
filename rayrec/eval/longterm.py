"""Long-term (session-level) metrics of interactive recommendation, as DORL/EasyRL4Rec report them.

A session is one simulated user's episode: the rewards r_t of the items shown at steps t = 1..len_s
and those items' category sets. Metrics are per session so that confidence intervals can be taken
over sessions, the unit that is independent between episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rayrec.errors import ConfigError, DataError
from rayrec.eval.metrics import entropy_bits

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def dominating_categories(
    train_item_ids: np.ndarray, categories: np.ndarray, top_rate: float = 0.8
) -> np.ndarray:
    """The fewest most-frequent categories that together cover ``top_rate`` of the training data.

    n_c = Σ over training interactions of 1[c ∈ c_item] (a multi-category item adds to each of its
    categories); sort categories by n_c descending (ties: lower category index first) and keep the
    shortest prefix with Σ n_c ≥ top_rate · Σ_c n_c. MCD then measures how much a policy keeps
    recommending what already dominates the logs (DORL's filter-bubble indicator). Returns (n_cat,) bool.
    """
    if not 0.0 < top_rate <= 1.0:
        raise ConfigError(f"top_rate={top_rate} must lie in (0, 1] (DORL uses 0.8)")
    categories = np.asarray(categories, dtype=bool)
    items = np.asarray(train_item_ids, dtype=np.int64)
    counts = np.bincount(items, minlength=len(categories)) @ categories.astype(np.int64)  # (n_cat,)
    total = counts.sum()
    if total == 0:
        raise DataError("no training interaction carries a category; dominating categories are undefined")
    order = np.argsort(-counts, kind="stable")
    n_keep = int(np.searchsorted(np.cumsum(counts[order]), top_rate * total)) + 1
    mask = np.zeros(categories.shape[1], dtype=bool)
    mask[order[:n_keep]] = True
    return mask


@dataclass(frozen=True)
class SessionStats:
    """Per-session sums the long-term metrics are built from, each of shape (n_sessions,)."""

    returns: np.ndarray  # Σ_t r_t
    lengths: np.ndarray  # len_s
    cat_coverage: np.ndarray  # |∪_t c_t| / n_cat
    cat_entropy: np.ndarray  # entropy (bits) of the session's category counts
    dominated: np.ndarray  # Σ_t 1[c_t ∩ D ≠ ∅]


def session_stats(
    rewards: Sequence[np.ndarray], item_categories: Sequence[np.ndarray], dominating: np.ndarray
) -> SessionStats:
    """Per-session return, length, category coverage/entropy and dominated-item count.

    cat_coverage_s = |∪_t c_t| / n_cat (share of all categories the session touched);
    cat_entropy_s = −Σ_c p_c log2 p_c with p_c ∝ number of the session's items carrying c;
    dominated_s = number of the session's items with at least one dominating category.
    Empty sessions are allowed and score 0 on every count.
    """
    dominating = np.asarray(dominating, dtype=bool)
    if len(rewards) != len(item_categories):
        raise DataError(
            f"got rewards for {len(rewards)} sessions but item categories for {len(item_categories)}"
        )
    if len(rewards) == 0:
        raise DataError("no sessions to evaluate; run at least one episode")
    n_cat = len(dominating)
    lengths = np.array([len(r) for r in rewards], dtype=np.int64)
    for s, (r, c) in enumerate(zip(rewards, item_categories)):
        if np.shape(c) != (len(r), n_cat):
            raise DataError(
                f"session {s}: item categories have shape {np.shape(c)}, expected ({len(r)}, {n_cat}) "
                "(one multi-hot row per reward, as many columns as the dominating mask)"
            )
    session = np.repeat(np.arange(len(rewards)), lengths)
    flat_r = np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in rewards])
    cats = np.concatenate([np.asarray(c, dtype=bool).reshape(-1, n_cat) for c in item_categories])
    # Per-session category counts by differences of a cumulative sum: exact for ints, empty-safe.
    cum = np.vstack([np.zeros((1, n_cat), dtype=np.int64), np.cumsum(cats, axis=0, dtype=np.int64)])
    ends = np.cumsum(lengths)
    counts = cum[ends] - cum[ends - lengths]  # (n_sessions, n_cat)
    dominated = np.bincount(session, weights=(cats & dominating).any(axis=1), minlength=len(rewards))
    return SessionStats(
        returns=np.bincount(session, weights=flat_r, minlength=len(rewards)),
        lengths=lengths,
        cat_coverage=(counts > 0).sum(axis=1) / max(n_cat, 1),
        cat_entropy=entropy_bits(counts),
        dominated=dominated,
    )


def mean_ci95(values: np.ndarray) -> tuple[float, float]:
    """(mean, half-width) of the normal-approximation 95% interval: x̄ ± 1.96 · sd / √n.

    sd uses n − 1 (the sample standard deviation); with one value the width is unknown, hence NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        raise DataError("cannot average zero values; run at least one episode")
    if len(values) == 1:
        return float(values[0]), float("nan")
    return float(values.mean()), float(Z_95 * values.std(ddof=1) / np.sqrt(len(values)))


def ratio_ci95(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """(ratio, half-width) for ρ = Σ_s x_s / Σ_s y_s, the 95% interval by the delta method.

    Per-step metrics (R_each, MCD) pool steps over sessions, so their unit of independence is still
    the session: with residuals d_s = x_s − ρ y_s, Var(ρ̂) ≈ Var(d) / (n ȳ²), half-width 1.96 √Var.
    """
    x = np.asarray(numerator, dtype=np.float64)
    y = np.asarray(denominator, dtype=np.float64)
    if y.sum() <= 0:
        raise DataError("no steps were taken in any session; per-step metrics are undefined")
    rho = x.sum() / y.sum()
    if len(x) == 1:
        return float(rho), float("nan")
    resid = x - rho * y
    return float(rho), float(Z_95 * resid.std(ddof=1) / (np.sqrt(len(x)) * y.mean()))
