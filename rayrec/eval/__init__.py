"""Evaluation: the offline ranking evaluator, ranking metrics (accuracy, diversity, novelty) and
long-term session metrics.

Imports nothing of rayrec's but ``rayrec.errors`` and the leaf ``rayrec.popularity`` (the one head/tail
split), so every layer (envs, algorithms, serve, tune) can use it without cycles; models and splits
reach the evaluator through the ``Scorer`` and ``SplitLike`` protocols. Formulas are in each
function's docstring.
"""

from rayrec.eval.longterm import (
    SessionStats,
    dominating_categories,
    mean_ci95,
    ratio_ci95,
    session_stats,
)
from rayrec.eval.metrics import (
    Ragged,
    as_ragged,
    catalog_coverage,
    category_entropy,
    entropy_bits,
    exclude_seen,
    exposure_gini,
    hit_matrix,
    hit_rate,
    intra_list_distance,
    ndcg,
    novelty,
    precision,
    recall,
    reciprocal_rank,
    relevant_counts,
    tail_coverage,
    tail_share,
    top_k,
)
from rayrec.eval.ranking import (
    RankingResult,
    Relevance,
    Scorer,
    SplitLike,
    evaluate_ranking,
    group_by_user,
    take_rows,
)
from rayrec.eval.report import ranking_report, session_report

__all__ = [
    "Ragged",
    "RankingResult",
    "Relevance",
    "Scorer",
    "SplitLike",
    "SessionStats",
    "as_ragged",
    "catalog_coverage",
    "category_entropy",
    "dominating_categories",
    "entropy_bits",
    "evaluate_ranking",
    "exclude_seen",
    "exposure_gini",
    "group_by_user",
    "hit_matrix",
    "hit_rate",
    "intra_list_distance",
    "mean_ci95",
    "ndcg",
    "novelty",
    "precision",
    "ranking_report",
    "ratio_ci95",
    "recall",
    "reciprocal_rank",
    "relevant_counts",
    "session_report",
    "session_stats",
    "tail_coverage",
    "tail_share",
    "take_rows",
    "top_k",
]
