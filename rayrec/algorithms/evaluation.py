"""Offline ranking evaluation of any Recommender on a Split: full-catalog ranking, seen items excluded.

Kept apart from the models (as RecBole keeps evaluator and model apart) so every baseline and LAAC are
scored by the same code path, in user batches so memory stays bounded on large catalogs.
"""

from __future__ import annotations

import numpy as np
from rich.progress import Progress

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.data import Dataset, Split
from rayrec.errors import ConfigError
from rayrec.eval import as_ragged, exclude_seen, ranking_report, top_k


def _items_by_user(ds: Dataset) -> list[np.ndarray]:
    return ds.user_sequences()


def evaluate_ranking(
    recommender: Recommender,
    split: Split,
    *,
    k: int = 10,
    on: str = "test",
    batch_users: int = 2048,
    progress: bool = False,
) -> dict[str, float]:
    """Metrics of ``recommender`` (already fitted on ``split.train``) on the ``on`` part of the split.

    Items the user interacted with in train (and in valid, when evaluating on test) are excluded from
    ranking, so a recommender is never rewarded for repeating history. Only users with at least one
    held-out interaction are ranked.
    """
    if on not in ("valid", "test"):
        raise ConfigError(f"on must be 'valid' or 'test', not {on!r}")
    target = getattr(split, on)
    seen_parts = [split.train] if on == "valid" else [split.train, split.valid]
    seen_lists = [_items_by_user(part) for part in seen_parts]
    held_out = _items_by_user(target)
    users = np.flatnonzero([len(h) > 0 for h in held_out])
    if len(users) == 0:
        raise ConfigError(f"the {on} part of the split is empty; nothing to evaluate")
    topk_rows = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"ranking {recommender.name}", total=len(users))
        for start in range(0, len(users), batch_users):
            batch = users[start : start + batch_users]
            scores = np.array(recommender.score(batch), dtype=np.float32, copy=True)
            seen = [np.concatenate([lists[u] for lists in seen_lists]) for u in batch]
            topk_rows.append(top_k(exclude_seen(scores, as_ragged(seen)), k))
            bar.advance(task, len(batch))
    return ranking_report(
        np.concatenate(topk_rows),
        [held_out[u] for u in users],
        train_popularity=split.train.item_popularity(),
        categories=split.train.categories,
        n_train_users=int((np.bincount(split.train.interactions["user"], minlength=1) > 0).sum()),
        k=k,
    )
