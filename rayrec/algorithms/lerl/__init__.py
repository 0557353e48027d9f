"""LERL: an LLM planner over categories, PPO over items, and a shared reflection pool (docs/design.md).

Usage (for ``planner="llm"`` the planner app must run: ``rayrec planner up``; ``rayrec train lerl``
deploys it)::

    env_config = make_lerl_env_config("ml-100k", sim=SimConfig(quit_model="category_window"))
    config = (
        LERLConfig()
        .environment(env_config=env_config)
        .training(planner="llm", m=3, replan_every=5, n_reflections=1, mask="soft", kappa=5.0)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=16)
    )
    algo = config.build_algo()

``planner="round_robin" | "random"`` are the fixed-rule and chance ablations, ``"none"`` is flat PPO with
the same module. Metrics: ``env_runners/lerl/*`` (plans, planner requests and fallbacks, planner ms,
sessions sent to the pool) and ``lerl/pool_size``, ``lerl/mean_sampled_return``.
"""

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
