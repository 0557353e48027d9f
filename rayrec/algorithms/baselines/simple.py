"""Popularity and random: the floor any learned recommender must clear, and the two ends of the
accuracy/diversity trade-off (popularity is accurate but concentrated, random is diverse but useless).

Their scoring is ``rayrec.popularity`` (``popularity_scores``, ``random_scores``), shared with the
simulator's popularity and random policies (``rayrec.envs.policies``), so each floor has one
implementation. The one deliberate difference is tie handling: offline, equally popular items keep
equal scores and the evaluator's top-k breaks the tie (the published baseline table is made so);
in the simulator the policy draws a seeded random order among them.
"""

from __future__ import annotations

import numpy as np

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.data import Dataset
from rayrec.popularity import popularity_scores, random_scores


class PopularityRecommender(Recommender):
    """Ranks items by training interaction count, the same list for everyone."""

    name = "popularity"

    def __init__(self) -> None:
        self._scores: np.ndarray | None = None

    def fit(self, train: Dataset) -> PopularityRecommender:
        self._scores = popularity_scores(train.item_popularity())
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._scores is None:
            raise RuntimeError("call fit() before score()")
        return np.broadcast_to(self._scores, (len(users), len(self._scores)))


class RandomRecommender(Recommender):
    """Uniformly random scores, reproducible from ``seed`` for the same sequence of calls."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._n_items: int | None = None

    def fit(self, train: Dataset) -> RandomRecommender:
        self._n_items = train.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._n_items is None:
            raise RuntimeError("call fit() before score()")
        return random_scores(self._rng, len(users), self._n_items)
