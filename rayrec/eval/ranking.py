"""Offline full-catalog ranking evaluation of anything that scores items for users.

One evaluator for every method (the offline baselines, LAAC, a Serve endpoint, a Tune trial), kept
apart from the models as RecBole keeps evaluator and model apart, so all are scored by the same code.
It sits in ``eval``, a bottom layer, and so imports neither ``data`` nor ``algorithms``: a model only
has to satisfy :class:`Scorer` and a split only :class:`SplitLike` (``rayrec.data.Split`` does, as
does anything with the same attributes).

Protocol: each ranked user's whole catalog is scored, items the user met in train (and in valid, when
evaluating on test) are removed, and the top k are compared with the user's *relevant* held-out items.
Which held-out rows are relevant is an explicit :class:`Relevance` rule, because a logged row is not
always a positive: a KuaiRand row is an exposure that may not have been clicked. Every user with at
least one held-out row is ranked (diversity, coverage and novelty use all their lists); users with no
relevant held-out row are excluded from the accuracy metrics (HR, NDCG, MRR, P, R), which are
undefined for them, and the result says how many users each group has.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from rich.progress import Progress

from rayrec.errors import ConfigError, DataError
from rayrec.eval.metrics import Ragged, exclude_seen, top_k
from rayrec.eval.report import ranking_report
from rayrec.popularity import head_mask


class Scorer(Protocol):
    """What the evaluator needs of a model: a score for every catalog item, higher ranks first."""

    def score(self, users: np.ndarray) -> np.ndarray:
        """(B, n_items) scores for the internal user ids ``users`` (B,)."""
        ...


class InteractionPart(Protocol):
    """One part of a split as the evaluator reads it (``rayrec.data.Dataset`` satisfies it).

    ``interactions`` maps ``user``, ``item`` (internal ids) and ``rating`` to equal-length arrays
    (a pandas DataFrame does); ``categories`` is the (n_items, n_cat) bool catalog; ``meta`` may hold
    ``head_items``, the head of an untouched training set (see ``rayrec.data.long_tail_imbalance``).
    """

    interactions: Any
    categories: np.ndarray
    meta: dict

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...


class SplitLike(Protocol):
    """train / valid / test parts over the same users and catalog (``rayrec.data.Split``)."""

    train: InteractionPart
    valid: InteractionPart
    test: InteractionPart


_RULE = re.compile(r"^\s*rating\s*>=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Relevance:
    """Which held-out rows count as relevant: all of them (``min_rating=None``) or rating >= a cut.

    Spelled ``all`` or ``rating>=X`` on the command line. Per-dataset defaults are the data layer's
    business (``rayrec.data.default_relevance``): all rows for MovieLens leave-last-out, a click for
    KuaiRand (``rating>=1`` on ``is_click``), watch ratio >= 2 for KuaiRec.
    """

    min_rating: float | None = None

    @classmethod
    def parse(cls, rule: str | Relevance) -> Relevance:
        """``all`` or ``rating>=X`` (X a number) as a rule; a ``Relevance`` passes through."""
        if isinstance(rule, Relevance):
            return rule
        text = str(rule).strip().lower()
        if text == "all":
            return cls(None)
        match = _RULE.match(text)
        if match is None:
            raise ConfigError(
                f"relevance rule {rule!r} not understood; use 'all' (every held-out row) or 'rating>=X' "
                "(e.g. rating>=4 for 1-5 ratings, rating>=1 for 0/1 clicks)"
            )
        cut = float(match.group(1))
        if not math.isfinite(cut):
            raise ConfigError(f"relevance threshold must be a finite number, not {match.group(1)!r}")
        return cls(cut)

    def mask(self, ratings: np.ndarray) -> np.ndarray:
        """(n,) bool: which rows with these ratings are relevant."""
        ratings = np.asarray(ratings)
        if self.min_rating is None:
            return np.ones(len(ratings), dtype=bool)
        return ratings >= self.min_rating

    def __str__(self) -> str:
        if self.min_rating is None:
            return "all"
        return f"rating>={self.min_rating:g}"


@dataclass
class RankingResult:
    """Metrics of one evaluation and the facts needed to read them.

    metrics: the ``ranking_report`` dict (fixed keys, so tables line up across methods).
    relevance: the rule used; users_ranked: users with a held-out row (all their lists enter the
    beyond-accuracy metrics); users_evaluated: those with a relevant held-out row (the accuracy
    metrics average over them); head: where the head/tail split came from.
    """

    metrics: dict[str, float]
    relevance: str
    users_ranked: int
    users_evaluated: int
    head: str

    def info(self) -> dict[str, object]:
        """Everything but the metrics, for a run directory's record."""
        return {
            "relevance": self.relevance,
            "users_ranked": self.users_ranked,
            "users_evaluated": self.users_evaluated,
            "head": self.head,
        }


def group_by_user(users: np.ndarray, items: np.ndarray, n_users: int) -> Ragged:
    """Items of each user 0..n_users-1 as ``Ragged``, in the given row order within a user."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if len(users) and (users.min() < 0 or users.max() >= n_users):
        raise DataError(f"user ids must lie in [0, {n_users}); map raw ids to internal ids first")
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return Ragged(indptr, items[order])


def take_rows(ragged: Ragged, rows: np.ndarray) -> Ragged:
    """The given rows of a ``Ragged``, in that order (no Python loop over rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = ragged.indptr[rows]
    lengths = ragged.indptr[rows + 1] - starts
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    index = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return Ragged(indptr, ragged.indices[index])


def _columns(part: InteractionPart, what: str) -> Mapping[str, np.ndarray]:
    frame = part.interactions
    try:
        return {c: np.asarray(frame[c]) for c in ("user", "item", "rating")}
    except (KeyError, IndexError) as exc:
        raise DataError(f"the {what} part needs user, item and rating columns ({exc})") from None


def evaluate_ranking(
    scorer: Scorer,
    split: SplitLike,
    *,
    relevance: Relevance | str,
    k: int = 10,
    on: str = "test",
    head_fraction: float = 0.2,
    batch_users: int = 2048,
    progress: bool = False,
    name: str = "model",
) -> RankingResult:
    """Metrics of ``scorer`` (already fitted on ``split.train``) on the ``on`` part of ``split``.

    relevance: which held-out rows are relevant (:class:`Relevance` or its text, ``all`` /
        ``rating>=X``); there is deliberately no default, since the right rule depends on the data.
    head_fraction: the head for tail coverage / tail share, used only when ``split.train.meta`` has
        no ``head_items`` (a long-tail study stores the head of the untouched training set there,
        which is the one to use: recomputing it on the thinned set would move items into the head).
    batch_users: users scored at once, so memory stays bounded on large catalogs.
    """
    if on not in ("valid", "test"):
        raise ConfigError(f"on must be 'valid' or 'test', not {on!r}")
    rule = Relevance.parse(relevance)
    train = split.train
    target = getattr(split, on)
    n_users, n_items = train.n_users, train.n_items
    parts = [train] if on == "valid" else [train, split.valid]
    cols = [_columns(part, label) for part, label in zip(parts, ("train", "valid"), strict=False)]
    seen = group_by_user(
        np.concatenate([c["user"] for c in cols]), np.concatenate([c["item"] for c in cols]), n_users
    )
    held = _columns(target, on)
    ranked_users = np.flatnonzero(np.bincount(held["user"].astype(np.int64), minlength=n_users) > 0)
    if len(ranked_users) == 0:
        raise ConfigError(f"the {on} part of the split is empty; nothing to evaluate")
    keep = rule.mask(held["rating"])
    relevant = group_by_user(held["user"][keep], held["item"][keep], n_users)
    n_evaluated = int((np.diff(relevant.indptr)[ranked_users] > 0).sum())
    if n_evaluated == 0:
        raise DataError(
            f"no user has a relevant {on} item under the relevance rule {rule} "
            f"({len(ranked_users)} users have {on} rows); choose a lower threshold or --relevance all"
        )
    train_items = cols[0]["item"].astype(np.int64)
    train_popularity = np.bincount(train_items, minlength=n_items)
    stored_head = train.meta.get("head_items")
    if stored_head is not None:
        head = np.asarray(stored_head, dtype=bool)
        if head.shape != (n_items,):
            raise DataError(f"meta['head_items'] has shape {head.shape}, expected ({n_items},)")
        head_source = "meta['head_items'] (untouched training set)"
    else:
        head = head_mask(train_popularity, head_fraction)
        head_source = f"top {head_fraction:g} of training items by popularity"
    topk_rows = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"ranking {name}", total=len(ranked_users))
        for start in range(0, len(ranked_users), batch_users):
            batch = ranked_users[start : start + batch_users]
            scores = np.array(scorer.score(batch), dtype=np.float32, copy=True)
            if scores.shape != (len(batch), n_items):
                raise DataError(
                    f"{name}.score returned shape {scores.shape} for {len(batch)} users; expected "
                    f"({len(batch)}, {n_items}), one score per catalog item"
                )
            topk_rows.append(top_k(exclude_seen(scores, take_rows(seen, batch)), k))
            bar.advance(task, len(batch))
    metrics = ranking_report(
        np.concatenate(topk_rows),
        take_rows(relevant, ranked_users),
        train_popularity=train_popularity,
        categories=train.categories,
        n_train_users=int((np.bincount(cols[0]["user"].astype(np.int64), minlength=1) > 0).sum()),
        k=k,
        head_items=head,
    )
    return RankingResult(metrics, str(rule), len(ranked_users), n_evaluated, head_source)
