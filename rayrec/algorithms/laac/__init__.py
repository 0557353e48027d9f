"""LAAC: LLM-guided Adversarial Actor Critic (offline; docs/design.md §8) as an RLlib algorithm."""

from rayrec.algorithms.laac.laac import LAAC, LAACConfig, top_k
from rayrec.algorithms.laac.laac_learner import LAACTorchLearner
from rayrec.algorithms.laac.laac_rl_module import LAACTorchRLModule
from rayrec.algorithms.laac.llm_table import LLMTable, load_llm_table, random_llm_table
from rayrec.algorithms.laac.recommender import LAACRecommender
from rayrec.algorithms.laac.reference_policy import RetrievalConfig, reference_table, retrieve_candidates
from rayrec.algorithms.laac.train import LAACRunResult, train_laac

__all__ = [
    "LAAC",
    "LAACConfig",
    "LAACRecommender",
    "LAACRunResult",
    "LAACTorchLearner",
    "LAACTorchRLModule",
    "LLMTable",
    "RetrievalConfig",
    "load_llm_table",
    "random_llm_table",
    "reference_table",
    "retrieve_candidates",
    "top_k",
    "train_laac",
]
