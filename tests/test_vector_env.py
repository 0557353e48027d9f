"""RecSimVectorEnv: one batched core as a gymnasium VectorEnv with NEXT_STEP autoreset, and RLlib's
VECTOR_ENTRY_POINT mode training PPO on it."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rayrec.algorithms.baselines.flat_ppo import flat_ppo_config
from rayrec.data.registry import load_dataset
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.config import SimConfig
from rayrec.envs.recsim_env import RecSimEnv
from rayrec.envs.recsim_vector_env import RecSimVectorEnv
from rayrec.envs.registration import create_env, make_env_config
from rayrec.envs.response import ResponseModel


@pytest.fixture(scope="module")
def mf(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResponseModel, Path]:
    return cached_response_model("ml-100k", path=tmp_path_factory.mktemp("mf"))


@pytest.fixture(scope="module")
def world(mf: tuple) -> tuple[ResponseModel, np.ndarray, np.ndarray]:
    from rayrec.envs.core import encode_user_features

    data = load_dataset("ml-100k")
    return mf[0], data.categories, encode_user_features(data.user_features)


def _assert_obs_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize(
    "cfg",
    [
        SimConfig(quit_model="category_window", max_turn=8),
        SimConfig(quit_model="temper", max_turn=12),
        SimConfig(quit_model="fatigue", max_turn=10),
        SimConfig(quit_model="temper", slate_size=3, user_features=True, max_turn=9),
    ],
    ids=["category_window", "temper", "fatigue", "temper-slate-features"],
)
def test_vector_env_matches_one_user_envs_across_autoresets(world: tuple, cfg: SimConfig) -> None:
    """Same users and actions: every row of the vector env is the one-user env stepped alongside."""
    response, cats, feats = world
    k = 5
    venv = RecSimVectorEnv(k, response, cats, cfg, feats)
    singles = [RecSimEnv(response, cats, cfg, feats) for _ in range(k)]
    obs, info = venv.reset(seed=1, options={"users": np.arange(10, 10 + k)})
    assert venv.observation_space.contains(obs)
    for i, env in enumerate(singles):
        want, _ = env.reset(options={"user": int(info["user"][i])})
        _assert_obs_equal({key: v[i] for key, v in obs.items()}, want)

    rng = np.random.default_rng(0)
    resetting, n_resets = np.zeros(k, dtype=bool), 0
    for _ in range(40):
        # half the steps from a few popular ids, so genres repeat and users leave before max_turn too
        actions = rng.integers(0, 30 if rng.random() < 0.5 else len(cats), venv.action_space.shape)
        obs, reward, term, trunc, info = venv.step(actions)
        assert venv.observation_space.contains(obs)
        for i, env in enumerate(singles):
            row = {key: v[i] for key, v in obs.items()}
            if resetting[i]:  # NEXT_STEP: this row spent the step starting the user in info["user"]
                want, _ = env.reset(options={"user": int(info["user"][i])})
                assert (reward[i], term[i], trunc[i], info["_quit_reason"][i]) == (0.0, False, False, False)
                n_resets += 1
            else:
                want, r, te, tr, inf = env.step(actions[i])
                assert (reward[i], term[i], trunc[i]) == (pytest.approx(r, rel=1e-6), te, tr)
                assert info["quit_reason"][i] == inf["quit_reason"] and info["user"][i] == inf["user"]
            _assert_obs_equal(row, want)
        resetting = term | trunc
    assert n_resets >= k  # sessions of <= 12 steps in 40: every row went through autoresets


def test_next_step_autoreset_ignores_the_finished_rows_action(world: tuple) -> None:
    response, cats, _ = world
    # two items without a shared genre: with a window of 1, alternating them never repeats a genre,
    # showing one twice in a row does
    a = 0
    b = int(np.flatnonzero(~(cats & cats[a]).any(axis=1))[0])
    cfg = SimConfig(quit_model="category_window", quit_params={"window": 1}, max_turn=30)
    venv = RecSimVectorEnv(2, response, cats, cfg)
    assert venv.metadata["autoreset_mode"] is gym.vector.AutoresetMode.NEXT_STEP
    venv.reset(seed=0)
    venv.step(np.array([a, a]))
    _, _, term, trunc, info = venv.step(np.array([a, b]))  # row 0 repeats its genre and leaves
    assert term.tolist() == [True, False] and not trunc.any()
    assert info["quit_reason"].tolist() == ["category_repeat", ""]

    obs, reward, term, trunc, info = venv.step(np.array([b, a]))  # row 0's action must be ignored
    assert reward[0] == 0.0 and reward[1] > 0.0
    assert not term.any() and not trunc.any()
    assert info["_quit_reason"].tolist() == [False, True] and info["_user"].all()
    assert obs["step"][:, 0].tolist() == [0, 3]
    assert (obs["history_items"][0] == cats.shape[0]).all()  # the new user's history is empty
    assert obs["category_shown"][0].sum() == 0.0

    obs, reward, term, _, _ = venv.step(np.array([b, b]))  # the new user in row 0 now steps normally
    assert obs["step"][:, 0].tolist() == [1, 4] and obs["history_items"][0, -1] == b
    assert reward[0] > 0.0 and not term[0]


def test_create_env_builds_vector_envs_with_their_own_seeds(mf: tuple) -> None:
    config = make_env_config("ml-100k", mf[1], SimConfig(quit_model="fatigue", seed=3))
    e1, e2 = create_env(config | {"num_envs": 8}), create_env(config | {"num_envs": 8})
    assert isinstance(e1, RecSimVectorEnv) and e1.num_envs == 8
    assert e1.reset()[1]["user"].tolist() != e2.reset()[1]["user"].tolist()
    assert isinstance(create_env(config), RecSimEnv)


@pytest.mark.timeout(120)
def test_ppo_trains_on_vector_entry_point_env_runners(ray_session, mf: tuple) -> None:
    env_config = make_env_config("ml-100k", mf[1], SimConfig(quit_model="temper", seed=0))
    config = flat_ppo_config(
        env_config,
        num_env_runners=1,
        num_envs_per_env_runner=16,
        gym_env_vectorize_mode="vector_entry_point",
        num_cpus_per_env_runner=1,
    ).training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2)
    algo = config.build_algo()
    try:
        envs = algo.env_runner_group.foreach_env_runner(
            lambda runner: type(runner.env.unwrapped).__name__, local_env_runner=False
        )
        assert envs == ["RecSimVectorEnv"]
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
