"""RecSimEnv for RLlib: a registered name and a portable env_config that carries the simulator itself.

The one name serves both of RLlib's vectorisations: with ``gym_env_vectorize_mode="sync"`` (RLlib's
default) the creator builds one-user RecSimEnvs; with ``"vector_entry_point"`` RLlib passes
``num_envs`` in the env_config and the creator builds one RecSimVectorEnv over a batched core.

Remote EnvRunners may sit on other nodes, whose disks hold neither the driver's cache nor the dataset,
so :func:`make_env_config` loads everything on the driver and puts it *into* the env_config: the
response model as a payload of numpy arrays (ml-100k's MF is ~350 KB), the item categories and the
encoded user features. An EnvRunner never reads a path or runs an asset fetch; it rebuilds the model
once per process (cached by the model's digest), so ``num_envs_per_env_runner > 1`` pays it once.

The flat PPO baseline that trains on this env is ``rayrec.algorithms.baselines.flat_ppo``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.data.registry import load_dataset
from rayrec.envs.artifacts import cached_response_model, require_categories
from rayrec.envs.config import SimConfig
from rayrec.envs.core import encode_user_features
from rayrec.envs.feedback import FitConfig
from rayrec.envs.recsim_env import RecSimEnv
from rayrec.envs.recsim_vector_env import RecSimVectorEnv
from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError

ENV_NAME = "rayrec-recsim"
_instances = itertools.count()


def make_env_config(
    dataset: str,
    response_path: str | Path | None = None,
    sim: SimConfig | dict | None = None,
    dataset_path: str | Path | None = None,
    *,
    kind: str = "mf",
    loader_options: dict[str, Any] | None = None,
    fit: FitConfig | dict | None = None,
) -> dict[str, Any]:
    """The env_config RLlib ships to every EnvRunner: the simulator's data itself, no driver paths.

    The response model is read from ``response_path`` (an artifact directory), or else the dataset's
    cached model of ``kind`` with ``fit`` settings, built here first if the cache has none. A dataset
    without item categories is refused before any fitting.
    """
    sim = sim if isinstance(sim, SimConfig) else SimConfig.from_dict(sim or {})
    fit = fit if isinstance(fit, FitConfig) else FitConfig.from_dict(fit)
    data = require_categories(load_dataset(dataset, dataset_path, **(loader_options or {})))
    if response_path is None:  # the cache checks the model against the dataset's sizes
        response, _ = cached_response_model(
            dataset, kind, dataset_path=dataset_path, loader_options=loader_options, fit=fit, data=data
        )
    else:
        response = ResponseModel.load(response_path)
        if (response.n_users, response.n_items) != (data.n_users, data.n_items):
            raise ConfigError(
                f"response model at {response_path} is for {response.n_users} users × {response.n_items} "
                f"items, but {dataset} has {data.n_users} × {data.n_items}; fit it on {dataset}"
            )
    feats = None if data.user_features is None else encode_user_features(data.user_features)
    return {
        "dataset": dataset,
        "response": response.to_payload(),
        "response_digest": response.digest(),
        "categories": np.asarray(data.categories, dtype=bool),
        "user_features": feats,
        "sim": sim.to_dict(),
    }


_models: OrderedDict[str, ResponseModel] = OrderedDict()


def _response(env_config: dict[str, Any]) -> ResponseModel:
    """The env_config's response model, rebuilt once per process and digest."""
    if "response" not in env_config:
        raise ConfigError("this env_config carries no response model; build it with make_env_config()")
    digest = str(env_config.get("response_digest", ""))
    model = _models.get(digest) if digest else None
    if model is None:
        model = ResponseModel.from_payload(env_config["response"])
        if digest:
            _models[digest] = model
            while len(_models) > 4:
                _models.popitem(last=False)
    return model


def create_env(env_config: dict[str, Any]) -> RecSimEnv | RecSimVectorEnv:
    """Env creator for ``tune.register_env`` and ``AlgorithmConfig.environment``.

    With a fixed ``sim.seed`` each env instance gets its own seed derived from (seed, EnvRunner index,
    instance number in this process), so parallel envs simulate different users yet a rerun of the
    same setup repeats them. ``num_envs`` in the env_config (RLlib's VECTOR_ENTRY_POINT mode) asks
    for a RecSimVectorEnv of that many users. RLlib 2.60 passes that env_config as a plain dict
    without the EnvRunner index, so there ``flat_ppo_config`` has RLlib seed each runner instead.
    """
    response = _response(env_config)
    categories = np.asarray(env_config["categories"], dtype=bool)
    feats = env_config.get("user_features")
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
