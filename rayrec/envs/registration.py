"""RecSimEnv for RLlib: a registered name, an env_config of plain values, and the flat PPO setup.

The one name serves both of RLlib's vectorisations: with ``gym_env_vectorize_mode="sync"`` (RLlib's
default) the creator builds one-user RecSimEnvs; with ``"vector_entry_point"`` RLlib passes
``num_envs`` in the env_config and the creator builds one RecSimVectorEnv over a batched core.

Remote EnvRunners build their env themselves, so the env_config holds only names and paths: the
dataset name (loaded from the asset cache on that process) and a saved response-model artifact
directory. Loading both takes well under a second and is cached per process, so
``num_envs_per_env_runner > 1`` pays it once.

Dict observations: RLlib's default PPO module wants a flat Box, so :func:`flat_ppo_config` puts
RLlib's ``FlattenObservations`` env-to-module connector in front of it (Box parts are concatenated
as floats, the MultiBinary mask stays 0/1). The env keeps the Dict so LERL's own module can embed
item ids instead.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.data.registry import load_dataset
from rayrec.envs.config import SimConfig
from rayrec.envs.core import encode_user_features
from rayrec.envs.recsim_env import RecSimEnv
from rayrec.envs.recsim_vector_env import RecSimVectorEnv
from rayrec.envs.response import ResponseModel, cached_response_model
from rayrec.errors import ConfigError

ENV_NAME = "rayrec-recsim"
_instances = itertools.count()


def make_env_config(
    dataset: str,
    response_path: str | Path | None = None,
    sim: SimConfig | dict | None = None,
    dataset_path: str | Path | None = None,
) -> dict[str, Any]:
    """The env_config RLlib ships to every EnvRunner: plain values only.

    Without ``response_path`` the dataset's cached MF response model is used, fitted here first if
    the cache has none, so EnvRunners only ever load it.
    """
    sim = sim if isinstance(sim, SimConfig) else SimConfig.from_dict(sim or {})
    if response_path is None:
        _, response_path = cached_response_model(dataset, "mf", dataset_path=dataset_path)
    return {
        "dataset": dataset,
        "dataset_path": None if dataset_path is None else str(dataset_path),
        "response_path": str(response_path),
        "sim": sim.to_dict(),
    }


@lru_cache(maxsize=4)
def _load(
    dataset: str, dataset_path: str | None, response_path: str
) -> tuple[ResponseModel, np.ndarray, Any]:
    data = load_dataset(dataset, dataset_path)
    response = ResponseModel.load(response_path)
    if response.n_items != data.n_items or response.n_users != data.n_users:
        raise ConfigError(
            f"response model at {response_path} is for {response.n_users} users × {response.n_items} items, "
            f"but {dataset} has {data.n_users} × {data.n_items}; fit it on {dataset}"
        )
    feats = None if data.user_features is None else encode_user_features(data.user_features)
    return response, data.categories, feats


def create_env(env_config: dict[str, Any]) -> RecSimEnv | RecSimVectorEnv:
    """Env creator for ``tune.register_env`` and ``AlgorithmConfig.environment``.

    With a fixed ``sim.seed`` each env instance gets its own seed derived from (seed, EnvRunner index,
    instance number in this process), so parallel envs simulate different users yet a rerun of the
    same setup repeats them. ``num_envs`` in the env_config (RLlib's VECTOR_ENTRY_POINT mode) asks
    for a RecSimVectorEnv of that many users. RLlib 2.60 passes that env_config as a plain dict
    without the EnvRunner index, so there :func:`flat_ppo_config` has RLlib seed each runner instead.
    """
    response, categories, feats = _load(
        env_config["dataset"], env_config.get("dataset_path"), env_config["response_path"]
    )
    sim = SimConfig.from_dict(dict(env_config.get("sim", {})))
    if sim.seed is not None:
        worker = int(getattr(env_config, "worker_index", None) or 0)  # None on a bare EnvRunner
        sim.seed = int(np.random.SeedSequence([sim.seed, worker, next(_instances)]).generate_state(1)[0])
    if "num_envs" in env_config:
        return RecSimVectorEnv(int(env_config["num_envs"]), response, categories, sim, feats)
    return RecSimEnv(response, categories, sim, feats)


def register() -> str:
    """Register ``rayrec-recsim`` with Tune/RLlib (call after ``ray.init`` so workers see it)."""
    from ray import tune

    tune.register_env(ENV_NAME, create_env)
    return ENV_NAME


def flat_ppo_config(env_config: dict[str, Any], **env_runners: Any) -> Any:
    """PPO (new API stack) on RecSimEnv with the Dict observation flattened: the flat baseline.

    ``env_runners`` go to ``.env_runners(...)`` (e.g. ``num_env_runners=2``). The training settings
    are RLlib's defaults scaled to short sessions (γ 0.9 as KuaiSim/DORL use); callers override them
    with ``.training(...)``.

    For more than a few envs per runner pass ``gym_env_vectorize_mode="vector_entry_point"`` with
    ``num_envs_per_env_runner=k``: each runner then steps one batched core of k users
    (RecSimVectorEnv) instead of k one-user envs in a row (``"sync"``, RLlib's default). That mode
    loses the EnvRunner index on the way to :func:`create_env`, so with a fixed ``sim.seed`` RLlib
    is asked to seed each runner's first reset (``debugging(seed=sim.seed)``, + runner index) to keep
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
