"""The flat PPO baseline (RLlib new API stack) trains on RecSimEnv with remote EnvRunners."""

from __future__ import annotations

import math

import pytest

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
