"""Non-learning and classic baselines every new method is compared against, and the harness that
fits and evaluates them (``run_baselines``)."""

from rayrec.algorithms.baselines.harness import BASELINES, run_baselines
from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.baselines.simple import PopularityRecommender, RandomRecommender

__all__ = [
    "BASELINES",
    "PopularityRecommender",
    "RandomRecommender",
    "Recommender",
    "run_baselines",
]
