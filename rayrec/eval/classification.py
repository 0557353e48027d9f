"""Metrics of a scored binary label: ranking quality (ROC AUC) and calibration (log loss).

The simulator's fit report uses them for click-like feedback, where an RMSE on 0/1 labels would say
little; they live here so every layer judges a classifier the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half); NaN when one
    class is missing, since the AUC is then undefined rather than 0.5."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood (nats) of 0/1 ``labels`` under probabilities ``probs``.

    Probabilities are clipped to ``[eps, 1 - eps]`` so one confident miss costs a large but finite
    amount; NaN for empty input.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))
