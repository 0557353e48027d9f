"""Discrete CQL (conservative double-Q over the catalog), offline from the logged MDP."""

from rayrec.algorithms.baselines.cql.cql import DiscreteCQL, DiscreteCQLConfig
from rayrec.algorithms.baselines.cql.cql_learner import DiscreteCQLTorchLearner
from rayrec.algorithms.baselines.cql.cql_rl_module import DiscreteCQLTorchRLModule

__all__ = ["DiscreteCQL", "DiscreteCQLConfig", "DiscreteCQLTorchLearner", "DiscreteCQLTorchRLModule"]
