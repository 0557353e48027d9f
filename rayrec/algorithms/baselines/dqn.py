"""DQN on the user simulator: RLlib's DQN (new API stack) over the flattened Dict observation.

The value-based online baseline of LERL's study: the same simulator, the same environment-step budget,
nothing of categories or plans. As ``flat_ppo_config`` does, RLlib's ``FlattenObservations``
env-to-module connector turns the Dict observation into one float vector (item ids in the history as
numbers, the mask as 0/1), and the env is the batched ``RecSimVectorEnv`` (``vector_entry_point``), so
one core step serves every user of an EnvRunner.

Budget-dependent settings: with a small budget RLlib's defaults (1,000 random steps before learning,
ε annealed over 10,000 steps) would leave DQN exploring at random for the whole run, so
:func:`dqn_config` scales both to ``budget``: learning starts after ``learning_starts_frac`` of it and
ε goes from 1 to ``final_epsilon`` over ``epsilon_frac`` of it. At inference DQN acts greedily
(argmax Q; the module's ``forward_inference``).
"""

from __future__ import annotations

from typing import Any

from rayrec.envs.registration import register
from rayrec.errors import ConfigError


def dqn_config(
    env_config: dict[str, Any],
    budget: int,
    *,
    seed: int = 0,
    learning_starts_frac: float = 0.1,
    epsilon_frac: float = 0.5,
    final_epsilon: float = 0.05,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 16,
    **training: Any,
) -> Any:
    """A ``DQNConfig`` for ``budget`` environment steps on ``rayrec-recsim`` (``make_env_config``'s
    env_config). ``training`` overrides ``DQNConfig.training`` settings (lr, hiddens, n_step, ...)."""
    import gymnasium as gym
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.connectors.env_to_module import FlattenObservations

    if not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"DQN budget must be an integer number of env steps >= 1, not {budget!r}")
    for name, value in (("learning_starts_frac", learning_starts_frac), ("epsilon_frac", epsilon_frac)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"DQN {name} must lie in [0, 1], not {value}")
    if env_config.get("sim", {}).get("slate_size", 1) != 1:
        raise ConfigError("DQN picks one item per step; use slate_size=1 for the DQN baseline")
    starts = max(1, int(budget * learning_starts_frac))
    anneal = max(starts + 1, int(budget * epsilon_frac))
    settings: dict[str, Any] = {
        "gamma": 0.9,  # as flat PPO and LERL: short sessions
        "lr": 5e-4,
        "train_batch_size_per_learner": 64,
        "num_steps_sampled_before_learning_starts": starts,
        "epsilon": [(0, 1.0), (anneal, final_epsilon)],
        "target_network_update_freq": max(100, budget // 50),
        "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": max(10_000, budget)},
        **training,
    }
    return (
        DQNConfig()
        .environment(register(), env_config=env_config)
        .env_runners(
            env_to_module_connector=lambda env, spaces, device: FlattenObservations(),
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            gym_env_vectorize_mode=gym.VectorizeMode.VECTOR_ENTRY_POINT,
        )
        .training(**settings)
        .reporting(min_sample_timesteps_per_iteration=min(1000, budget))
        .debugging(seed=seed)
    )
