"""Non-learning and classic baselines every new method is compared against."""

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.baselines.simple import PopularityRecommender, RandomRecommender

BASELINES: dict[str, type[Recommender]] = {
    "popularity": PopularityRecommender,
    "random": RandomRecommender,
}

__all__ = ["BASELINES", "PopularityRecommender", "RandomRecommender", "Recommender"]
