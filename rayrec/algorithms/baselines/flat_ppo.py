"""Flat PPO on the user simulator: RLlib's PPO (new API stack) over the flattened Dict observation.

RLlib's default PPO module wants a flat Box, so :func:`flat_ppo_config` puts RLlib's
``FlattenObservations`` env-to-module connector in front of it (Box parts are concatenated as floats,
the MultiBinary mask stays 0/1). The env keeps the Dict so LERL's own module can embed item ids
instead. It is the online baseline that knows nothing of categories or plans.
"""

from __future__ import annotations

from typing import Any

from rayrec.envs.registration import register


def flat_ppo_config(env_config: dict[str, Any], **env_runners: Any) -> Any:
    """PPO (new API stack) on RecSimEnv with the Dict observation flattened: the flat baseline.

    ``env_config`` comes from ``rayrec.envs.registration.make_env_config``; ``env_runners`` go to
    ``.env_runners(...)`` (e.g. ``num_env_runners=2``). The training settings are RLlib's defaults
    scaled to short sessions (γ 0.9 as KuaiSim/DORL use); callers override them with
    ``.training(...)``.

    For more than a few envs per runner pass ``gym_env_vectorize_mode="vector_entry_point"`` with
    ``num_envs_per_env_runner=k``: each runner then steps one batched core of k users
    (RecSimVectorEnv) instead of k one-user envs in a row (``"sync"``, RLlib's default). That mode
    loses the EnvRunner index on the way to the env creator, so with a fixed ``sim.seed`` RLlib is
    asked to seed each runner's first reset (``debugging(seed=sim.seed)``, + runner index) to keep
    runners on different users.
    """
    import gymnasium as gym
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.connectors.env_to_module import FlattenObservations

    name = register()
    config = (
        PPOConfig()
        .environment(name, env_config=env_config)
        .env_runners(env_to_module_connector=lambda env, spaces, device: FlattenObservations(), **env_runners)
        .training(gamma=0.9, lr=3e-4, train_batch_size_per_learner=1000, minibatch_size=250, num_epochs=4)
    )
    mode = gym.VectorizeMode(env_runners.get("gym_env_vectorize_mode", gym.VectorizeMode.SYNC))
    seed = env_config.get("sim", {}).get("seed")
    if mode is gym.VectorizeMode.VECTOR_ENTRY_POINT and seed is not None:
        config = config.debugging(seed=seed)
    return config
