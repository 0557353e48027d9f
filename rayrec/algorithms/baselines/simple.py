"""Popularity and random: the floor any learned recommender must clear, and the two ends of the
accuracy/diversity trade-off (popularity is accurate but concentrated, random is diverse but useless)."""

from __future__ import annotations

import numpy as np

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.data import Dataset


class PopularityRecommender(Recommender):
    """Ranks items by training interaction count, the same list for everyone."""

    name = "popularity"

    def __init__(self) -> None:
        self._scores: np.ndarray | None = None

    def fit(self, train: Dataset) -> PopularityRecommender:
        self._scores = train.item_popularity().astype(np.float32)
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
        self._n_items = 0

    def fit(self, train: Dataset) -> RandomRecommender:
        self._n_items = train.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self._rng.random((len(users), self._n_items), dtype=np.float32)
