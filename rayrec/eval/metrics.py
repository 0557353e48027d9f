"""Offline ranking metrics over top-k lists, vectorised over users.

Every recommender in rayrec is judged by the same functions on the same inputs: a (U, k) matrix of
item ids ranked best first (``top_k`` after ``exclude_seen``, i.e. full-catalog ranking with the
user's training items removed) and each user's held-out items. Per-user metrics return (U,) arrays so
callers can average, bootstrap or slice by user group; catalog-level metrics return one float.

Notation: ``L_u = (i_1 .. i_k)`` is user u's list, ``R_u`` the set of u's held-out items,
``h_uj = 1[i_j ∈ R_u]`` the hit at rank j (1-based), ``c_i`` the category set of item i.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rayrec.errors import ConfigError, DataError

# Users per chunk when a metric gathers (U, k, n_cat) or (U, k, k) arrays: bounds memory to a few
# tens of MB whatever U is, while each chunk stays large enough for numpy to run at full speed.
_CHUNK_USERS = 8192


class Ragged(NamedTuple):
    """Item-id lists of varying length in CSR form: row u is ``indices[indptr[u]:indptr[u+1]]``.

    The attribute names match ``scipy.sparse.csr_matrix``, so either can be passed wherever rayrec
    asks for per-user item lists; converting 100k Python arrays once is what keeps metrics fast.
    """

    indptr: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1


def as_ragged(lists: Sequence[np.ndarray] | Ragged | object) -> Ragged:
    """Per-user item lists (a sequence of arrays, a ``Ragged`` or a scipy CSR matrix) as ``Ragged``."""
    if hasattr(lists, "indptr") and hasattr(lists, "indices"):
        return Ragged(np.asarray(lists.indptr, dtype=np.int64), np.asarray(lists.indices, dtype=np.int64))
    arrays = [np.asarray(a, dtype=np.int64).ravel() for a in lists]
    indptr = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=indptr[1:])
    indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return Ragged(indptr, indices)


def _row_ids(ragged: Ragged) -> np.ndarray:
    return np.repeat(np.arange(len(ragged), dtype=np.int64), np.diff(ragged.indptr))


def _check_topk(topk: np.ndarray) -> np.ndarray:
    topk = np.asarray(topk)
    if topk.ndim != 2 or not np.issubdtype(topk.dtype, np.integer):
        raise DataError(
            f"top-k lists must be a (users, k) integer array of item ids, got shape {topk.shape} "
            f"dtype {topk.dtype}; build them with rayrec.eval.top_k(scores, k)"
        )
    return topk


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores of each row, best first: (U, n_items) float -> (U, k) int64.

    argpartition selects the k candidates in O(n_items) and only those k are sorted, which is what
    makes full-catalog ranking affordable for 100k users. Ties at the cut are broken arbitrarily
    (but deterministically). Rows with fewer than k finite scores end with ``-inf``-scored items.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise DataError(f"scores must be a (users, n_items) matrix, got shape {scores.shape}")
    n_items = scores.shape[1]
    if not 1 <= k <= n_items:
        raise ConfigError(f"k={k} must be between 1 and the number of items ({n_items}); lower k")
    cand = np.argpartition(scores, n_items - k, axis=1)[:, n_items - k :]  # (U, k), unordered
    cand_scores = np.take_along_axis(scores, cand, axis=1)
    order = np.argsort(-cand_scores, axis=1, kind="stable")
    return np.take_along_axis(cand, order, axis=1).astype(np.int64, copy=False)


def exclude_seen(scores: np.ndarray, seen: Sequence[np.ndarray] | Ragged | object) -> np.ndarray:
    """Set each user's already-seen items to ``-inf`` so full-catalog ranking never recommends them.

    Works in place (and returns ``scores``) because score matrices are the largest arrays of an
    evaluation and a copy would double the peak memory. ``seen`` has one row per score row.
    """
    scores = np.asarray(scores)
    ragged = as_ragged(seen)
    if scores.ndim != 2 or len(ragged) != scores.shape[0]:
        raise DataError(
            f"seen items have {len(ragged)} rows but scores have shape {scores.shape}; pass one row of "
            "seen items per user row of scores"
        )
    if len(ragged.indices) and (ragged.indices.min() < 0 or ragged.indices.max() >= scores.shape[1]):
        raise DataError(
            f"seen item ids must lie in [0, {scores.shape[1]}); map raw ids to internal ids first"
        )
    scores[_row_ids(ragged), ragged.indices] = -np.inf
    return scores


def _relevant_keys(relevant: Ragged, n_users: int, base: int) -> np.ndarray:
    """Sorted unique ``user * base + item`` keys: one integer per (user, held-out item) pair."""
    if len(relevant) != n_users:
        raise DataError(f"got held-out items for {len(relevant)} users but top-k lists for {n_users}")
    if relevant.indices.min(initial=0) < 0:
        raise DataError("held-out item ids must be internal ids (>= 0); map raw ids first")
    return np.unique(_row_ids(relevant) * base + relevant.indices)


def relevant_counts(relevant: Sequence[np.ndarray] | Ragged | object) -> np.ndarray:
    """|R_u|: number of *distinct* held-out items per user (duplicates would inflate recall's denominator)."""
    ragged = as_ragged(relevant)
    base = int(ragged.indices.max(initial=0)) + 1
    keys = _relevant_keys(ragged, len(ragged), base)
    return np.bincount(keys // base, minlength=len(ragged))


def hit_matrix(topk: np.ndarray, relevant: Sequence[np.ndarray] | Ragged | object) -> np.ndarray:
    """h_uj = 1[L_u[j] ∈ R_u] as a (U, k) bool matrix.

    Each (user, item) pair becomes one int64 key ``u * base + i``; membership of all U·k list keys in
    the sorted held-out keys is one ``searchsorted`` instead of U Python-level set lookups.
    """
    topk = _check_topk(topk)
    if topk.min(initial=0) < 0:
        raise DataError("recommended item ids must be internal ids (>= 0); map raw ids first")
    ragged = as_ragged(relevant)
    hi = max(int(topk.max(initial=0)), int(ragged.indices.max(initial=0)))
    base = hi + 1
    keys = _relevant_keys(ragged, len(topk), base)
    query = np.arange(len(topk), dtype=np.int64)[:, None] * base + topk
    if len(keys) == 0:
        return np.zeros(topk.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[pos] == query


def hit_rate(hits: np.ndarray) -> np.ndarray:
    """HR@k_u = 1[Σ_j h_uj > 0]: did any held-out item make the list."""
    return hits.any(axis=1).astype(np.float64)


def precision(hits: np.ndarray) -> np.ndarray:
    """P@k_u = Σ_j h_uj / k."""
    return hits.sum(axis=1) / hits.shape[1]


def recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """R@k_u = Σ_j h_uj / |R_u|; NaN for users with no held-out item (undefined, not zero)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, hits.sum(axis=1) / n_relevant, np.nan)


def ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """NDCG@k_u = DCG_u / IDCG_u with binary gains.

    DCG_u = Σ_{j=1..k} h_uj / log2(j + 1);  IDCG_u = Σ_{j=1..min(k, |R_u|)} 1 / log2(j + 1), the DCG
    of a list with every held-out item on top. NaN for users with no held-out item.
    """
    k = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])  # ideal[m] = IDCG with m relevant in the top k
    dcg = hits @ discount
    idcg = ideal[np.minimum(n_relevant, k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, dcg / idcg, np.nan)


def reciprocal_rank(hits: np.ndarray) -> np.ndarray:
    """RR@k_u = 1 / (rank of the first hit), 0 when no hit in the top k; its mean over users is MRR@k."""
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def intra_list_distance(
    topk: np.ndarray, *, categories: np.ndarray | None = None, item_vectors: np.ndarray | None = None
) -> np.ndarray:
    """ILD@k_u = 2 / (k(k−1)) Σ_{j<l} d(i_j, i_l): mean pairwise distance inside each list.

    With ``categories`` (n_items, n_cat) bool: d = 1 − |c_a ∩ c_b| / |c_a ∪ c_b| (Jaccard distance of
    genre sets; two items without any category count as identical, d = 0).
    With ``item_vectors`` (n_items, dim): d = 1 − cos(v_a, v_b); a zero vector has cosine 0 with all.
    Lists of one item have no pairs; their ILD is 0.
    """
    topk = _check_topk(topk)
    if (categories is None) == (item_vectors is None):
        raise ConfigError("intra_list_distance needs exactly one of categories= or item_vectors=")
    k = topk.shape[1]
    if k < 2:
        return np.zeros(len(topk))
    n_pairs = k * (k - 1)  # ordered pairs j != l; sums below count each unordered pair twice
    if item_vectors is not None:
        vectors = np.asarray(item_vectors, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        # Σ_{j≠l} cos = ‖Σ_j v̂_j‖² − Σ_j ‖v̂_j‖², linear in k instead of k².
        out = np.empty(len(topk))
        for s in range(0, len(topk), _CHUNK_USERS):
            v = unit[topk[s : s + _CHUNK_USERS]]  # (B, k, dim)
            total = np.einsum("bd,bd->b", v.sum(axis=1), v.sum(axis=1))
            self_sim = np.einsum("bkd,bkd->b", v, v)
            out[s : s + _CHUNK_USERS] = 1.0 - (total - self_sim) / n_pairs
        return out
    cats = np.asarray(categories, dtype=np.float32)
    out = np.empty(len(topk))
    for s in range(0, len(topk), _CHUNK_USERS):
        c = cats[topk[s : s + _CHUNK_USERS]]  # (B, k, n_cat)
        inter = c @ c.transpose(0, 2, 1)  # (B, k, k) |c_a ∩ c_b|
        size = np.diagonal(inter, axis1=1, axis2=2)  # (B, k) |c_a|
        union = size[:, :, None] + size[:, None, :] - inter
        jaccard = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
        out[s : s + _CHUNK_USERS] = (1.0 - jaccard).sum(axis=(1, 2)) / n_pairs  # diagonal is 0
    return out


def catalog_coverage(topk: np.ndarray, n_items: int) -> float:
    """|∪_u L_u| / n_items: share of the catalog recommended to at least one user."""
    topk = _check_topk(topk)
    return float(np.count_nonzero(np.bincount(topk.ravel(), minlength=n_items)) / n_items)


def tail_coverage(topk: np.ndarray, tail: np.ndarray) -> float:
    """|(∪_u L_u) ∩ T| / |T|: share of long-tail items T recommended to at least one user (0 if T empty).

    T is a bool mask over items, the complement of a head: ``~rayrec.popularity.head_mask(...)``.
    """
    topk = _check_topk(topk)
    shown = np.bincount(topk.ravel(), minlength=len(tail)) > 0
    n_tail = int(tail.sum())
    return float((shown & tail).sum() / n_tail) if n_tail else 0.0


def tail_share(topk: np.ndarray, tail: np.ndarray) -> float:
    """Σ_u Σ_j 1[i_j ∈ T] / (U·k): share of all recommendation slots filled with long-tail items."""
    topk = _check_topk(topk)
    return float(tail[topk].mean())


def novelty(topk: np.ndarray, train_popularity: np.ndarray, n_train_users: int) -> np.ndarray:
    """Per-list novelty (1/k) Σ_j −log2 p(i_j), in bits; its mean over users is the mean over all slots.

    p(i) = max(pop_i, 1) / n_train_users, the share of training users who interacted with i (pop_i is
    i's training interaction count; one interaction per user-item pair is assumed and p is capped at 1).
    Smoothing: an item nobody interacted with counts as seen by one user, so its novelty is the
    finite maximum log2(n_train_users) rather than infinity, and observed items keep their exact value.
    """
    topk = _check_topk(topk)
    if n_train_users < 1:
        raise DataError(f"n_train_users={n_train_users}: novelty needs at least one training user")
    p = np.minimum(np.maximum(np.asarray(train_popularity, dtype=np.float64), 1.0) / n_train_users, 1.0)
    return (-np.log2(p))[topk].mean(axis=1)


def exposure_gini(topk: np.ndarray, n_items: int) -> float:
    """Gini coefficient of item exposure over the whole catalog (0 = every item shown equally often).

    e_i = number of slots showing item i (items never shown count with e_i = 0); with e sorted
    ascending, G = Σ_{r=1..n} (2r − n − 1) e_(r) / (n Σ_r e_(r)). All exposure on one item gives (n−1)/n.
    """
    topk = _check_topk(topk)
    exposure = np.sort(np.bincount(topk.ravel(), minlength=n_items)).astype(np.float64)
    total = exposure.sum()
    if total == 0:
        raise DataError("exposure Gini of empty recommendation lists is undefined; pass at least one list")
    n = len(exposure)
    rank = np.arange(1, n + 1)
    return float(((2 * rank - n - 1) * exposure).sum() / (n * total))


def entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Row-wise Shannon entropy −Σ_c p_c log2 p_c of p = counts / Σ counts, in bits; 0 for all-zero rows."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    logp = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logp).sum(axis=-1)


def category_entropy(topk: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Per-list category entropy H_u = −Σ_c p_uc log2 p_uc (bits).

    p_uc = n_uc / Σ_c' n_uc', n_uc = number of items in L_u that carry category c (a multi-genre item
    counts once for each of its genres). Higher = the list spreads over more genres, more evenly.
    """
    topk = _check_topk(topk)
    cats = np.asarray(categories, dtype=np.int32)
    out = np.empty(len(topk))
    for s in range(0, len(topk), _CHUNK_USERS):
        counts = cats[topk[s : s + _CHUNK_USERS]].sum(axis=1)  # (B, n_cat)
        out[s : s + _CHUNK_USERS] = entropy_bits(counts)
    return out
