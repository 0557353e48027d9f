"""LERL: an LLM planner over categories, PPO over items, and a shared reflection pool (DESIGN.md §6)."""

from rayrec.algorithms.lerl.lerl import LERL, LERLConfig, mf_item_embeddings
from rayrec.algorithms.lerl.lerl_rl_module import LERLTorchRLModule
from rayrec.algorithms.lerl.planner_env import LERLVectorEnv, make_lerl_env_config

__all__ = [
    "LERL",
    "LERLConfig",
    "LERLTorchRLModule",
    "LERLVectorEnv",
    "make_lerl_env_config",
    "mf_item_embeddings",
]
