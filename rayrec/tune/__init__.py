"""Hyperparameter sweeps with Ray Tune (ASHA + Optuna) for LAAC and LERL.

``tune_laac`` optimises validation NDCG@10, ``tune_lerl`` validation R_tra; both write a sweep
directory with the best config (YAML), its checkpoint, a results CSV and a plot of the search, and
resume with ``resume=<sweep dir>`` (``Tuner.restore``). ``restore_best`` loads the winner.
"""

from rayrec.tune.runner import SweepResult, restore_best, tune_laac, tune_lerl
from rayrec.tune.spaces import LAAC_METRIC, LERL_METRIC, laac_search_space, lerl_search_space

__all__ = [
    "LAAC_METRIC",
    "LERL_METRIC",
    "SweepResult",
    "laac_search_space",
    "lerl_search_space",
    "restore_best",
    "tune_laac",
    "tune_lerl",
]
