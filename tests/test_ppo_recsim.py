"""The flat PPO baseline (RLlib new API stack) trains on RecSimEnv with remote EnvRunners."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rayrec import assets
from rayrec.algorithms.baselines.flat_ppo import flat_ppo_config
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.config import SimConfig
from rayrec.envs.registration import make_env_config


@pytest.mark.timeout(240)
def test_ppo_trains_with_two_env_runners(ray_session, tmp_path) -> None:
    _, artifact = cached_response_model("ml-100k", path=tmp_path / "mf")
    env_config = make_env_config("ml-100k", artifact, SimConfig(quit_model="temper", seed=0))
    config = flat_ppo_config(
        env_config, num_env_runners=2, num_envs_per_env_runner=2, num_cpus_per_env_runner=1
    ).training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2)
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    learner = result["learners"]["default_policy"]
    for key in ("policy_loss", "vf_loss", "entropy"):
        assert math.isfinite(learner[key]), (key, learner[key])
    runners = result["env_runners"]
    assert runners["num_episodes"] > 0
    assert 10 <= runners["episode_len_mean"] <= 20  # KuaiSim temper bounds with rewards in [0, 1]
    assert result["num_env_steps_sampled_lifetime"] >= 800


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.timeout(240)
def test_env_runner_builds_its_env_with_the_drivers_cache_removed(
    ray_session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The env_config carries the model, categories and features; an EnvRunner whose RAYREC_HOME is the
    driver's (now deleted) cache never reads it, never fetches, and still samples."""
    import ray
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    source = assets.ensure("ml-100k")  # the real cache, resolved before RAYREC_HOME moves
    home = tmp_path / "driver-cache"
    monkeypatch.setenv("RAYREC_HOME", str(home))
    assets.fetch("ml-100k", source=source)
    env_config = make_env_config("ml-100k", sim=SimConfig(quit_model="temper", seed=0))  # fits into home
    assert list((home / "simulators").iterdir())
    shutil.rmtree(home)
    assert not any(str(tmp_path) in s for s in _strings(env_config)), "the env_config names a driver path"

    config = flat_ppo_config(env_config, num_env_runners=1, num_envs_per_env_runner=2)
    runner_cls = ray.remote(num_cpus=1)(SingleAgentEnvRunner).options(
        runtime_env={"env_vars": {"RAYREC_HOME": str(home), "OMP_NUM_THREADS": "1"}}
    )
    runner = runner_cls.remote(config=config)
    try:
        episodes = ray.get(runner.sample.remote(num_timesteps=60, random_actions=True), timeout=180)
        seen = ray.get(runner.__ray_call__.remote(lambda self: os.environ.get("RAYREC_HOME")))
    finally:
        ray.kill(runner)
    assert seen == str(home)  # the runner was pointed at the removed cache
    assert sum(len(e) for e in episodes) >= 60
    assert all(np.isfinite(e.get_return()) for e in episodes)
    assert not home.exists()  # nothing on the runner touched the cache (cache_dir() would recreate it)
