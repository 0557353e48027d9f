"""LAAC: LLM-guided Adversarial Actor Critic (offline; DESIGN.md §5) as an RLlib algorithm."""

from rayrec.algorithms.laac.laac import LAAC, LAACConfig, top_k
from rayrec.algorithms.laac.laac_learner import LAACTorchLearner
from rayrec.algorithms.laac.laac_rl_module import LAACTorchRLModule
from rayrec.algorithms.laac.llm_table import LLMTable, load_llm_table, random_llm_table

__all__ = [
    "LAAC",
    "LAACConfig",
    "LAACTorchLearner",
    "LAACTorchRLModule",
    "LLMTable",
    "load_llm_table",
    "random_llm_table",
    "top_k",
]
