"""The offline recommender contract: fit on a training Dataset, then score the whole catalog per user.

Scoring the full catalog (rather than sampled negatives) is what the evaluation protocol asks for
(full-catalog ranking excluding seen items), so every recommender exposes ``score``; that method is
all ``rayrec.eval.evaluate_ranking`` needs (its ``Scorer`` protocol), so a recommender is evaluated
without ``eval`` knowing this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from rayrec.data import Dataset


class Recommender(ABC):
    name: str = "recommender"

    @abstractmethod
    def fit(self, train: Dataset) -> Recommender:
        """Learn from ``train``; returns self so calls chain."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """(B, n_items) float32 scores for internal user ids ``users``; higher ranks first."""
