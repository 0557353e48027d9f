"""LERL end to end on the real simulator with real RLlib: planning reaches the module, PPO trains,
checkpoints restore the same policy; with the real planner deployment (slow): two EnvRunners share
the one planner and the one pool, and a planner lost mid-training means counted fallbacks."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rayrec.algorithms.lerl import LERL, LERLConfig, make_lerl_env_config
from rayrec.algorithms.lerl.lerl import ensure_planner
from rayrec.algorithms.lerl.planner_env import assign_lessons, create_lerl_env
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.config import SimConfig
from rayrec.errors import ConfigError


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return cached_response_model("ml-100k", path=tmp_path_factory.mktemp("lerl") / "mf")[1]


@pytest.fixture(scope="module")
def env_config(artifact) -> dict:
    return make_lerl_env_config("ml-100k", artifact, SimConfig(seed=0, max_turn=20))


def _config(env_config: dict, **training: object) -> LERLConfig:
    return (
        LERLConfig()
        .environment(env_config=env_config)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1, **training)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .debugging(seed=0)
    )


def _check_actions_in_plan(episodes: list, categories: np.ndarray) -> int:
    """Every action's item has a category the observation's mask allows; returns actions checked."""
    n = 0
    for ep in episodes:
        masks = np.asarray(ep.get_observations()["category_mask"])[: len(ep)]
        actions = np.asarray(ep.get_actions())
        for mask, items in zip(masks, actions):
            assert mask.sum() < mask.size, "the planner left every category allowed"
            for item in np.atleast_1d(items):  # every slot of a slate
                assert (categories[item] & mask.astype(bool)).any(), (item, mask)
            n += 1
    return n


@pytest.mark.parametrize("planner", ["round_robin", "random", "none"])
def test_vector_env_plans_due_rows_in_one_batch(env_config, planner: str) -> None:
    """m categories per due row after reset and every replan_every steps (new users at once); the
    mask in the observation is the core's; ``none`` leaves every category allowed."""
    env = create_lerl_env(
        {**env_config, "num_envs": 6, "lerl": {"planner": planner, "m": 2, "replan_every": 3}}
    )
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    n_cats = env.core.n_categories
    for _ in range(40):
        before = obs["category_mask"].copy()
        t_before = env.core.t.copy()
        obs, _, terminated, truncated, _ = env.step(rng.integers(0, env.core.n_items, 6))
        np.testing.assert_array_equal(obs["category_mask"], env.core.category_mask)
        live = ~(terminated | truncated)
        if planner == "none":
            assert (obs["category_mask"] == 1).all()
            continue
        assert (obs["category_mask"][live].sum(axis=1) == 2).all()
        kept = live & (env.core.t % 3 != 0) & (env.core.t == t_before + 1)
        np.testing.assert_array_equal(obs["category_mask"][kept], before[kept])  # no replan between plans
    counters = env.drain_counters()
    assert counters.get("plans", 0) == (0 if planner == "none" else env.totals["plans"]) and n_cats == 19
    assert env.drain_counters().get("plans", 0) == 0  # drained


@pytest.mark.timeout(300)
def test_round_robin_lerl_trains_keeps_to_the_plan_and_restores(ray_session, env_config, tmp_path) -> None:
    algo = _config(env_config, planner="round_robin", m=3, mask="hard", replan_every=2).build_algo()
    try:
        start = time.perf_counter()
        result = algo.train()
        elapsed = time.perf_counter() - start
        learner = result["learners"]["default_policy"]
        for key in ("policy_loss", "vf_loss", "entropy"):
            assert math.isfinite(learner[key]), (key, learner[key])
        runners = result["env_runners"]
        assert runners["num_episodes"] > 0
        assert runners["lerl"]["plans"] >= runners["num_episodes"]  # every new user gets a plan
        steps = runners["lerl"]["env_steps"]
        print(f"one LERL iteration (round_robin): {steps:.0f} env steps in {elapsed:.2f} s")

        # hard mask: over many sampled actions, none outside the plan that the observation carried
        episodes = algo.env_runner.sample(num_timesteps=600, explore=True)
        assert _check_actions_in_plan(episodes, np.asarray(env_config["categories"], bool)) >= 600

        obs = (
            {k: torch.as_tensor(np.asarray(v)) for k, v in episodes[0].get_observations().as_dict().items()}
            if hasattr(episodes[0].get_observations(), "as_dict")
            else None
        )
        if obs is None:
            raw = episodes[0].get_observations()
            raw = episodes[0].get_observations()
        obs = {k: torch.as_tensor(np.asarray(v)) for k, v in raw.items()}
        before = algo.get_module().forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        path = algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    restored = LERL.from_checkpoint(path)
    try:
        after = restored.get_module().forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        assert restored.config.planner == "round_robin" and restored.config.mask == "hard"
    finally:
        restored.stop()
    torch.testing.assert_close(after, before)
    assert torch.equal(after.argmax(-1), before.argmax(-1))


@pytest.mark.timeout(300)
def test_slates_train_with_plackett_luce_inside_the_plan(ray_session, artifact) -> None:
    env_config = make_lerl_env_config(
        "ml-100k", artifact, SimConfig(seed=0, slate_size=3, quit_model="temper")
    )
    algo = _config(env_config, planner="random", m=2, mask="hard", encoder="gru").build_algo()
    try:
        result = algo.train()
        assert math.isfinite(result["learners"]["default_policy"]["policy_loss"])
        episodes = algo.env_runner.sample(num_timesteps=200, explore=True)
    finally:
        algo.stop()
    actions = np.concatenate([np.asarray(ep.get_actions()) for ep in episodes])
    assert actions.shape[1] == 3 and all(len(set(a)) == 3 for a in actions)  # k distinct items
    assert _check_actions_in_plan(episodes, np.asarray(env_config["categories"], bool)) >= 200


@pytest.mark.timeout(120)
def test_missing_planner_fails_at_once_with_how_to_start_it(ray_session) -> None:
    with pytest.raises(ConfigError, match="rayrec planner up --name no-such-planner"):
        ensure_planner("no-such-planner")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_llm_planner_two_runners_share_planner_and_pool_and_survive_its_loss(ray_session, env_config) -> None:
    """Slow (the SmolLM2 replica alone takes 40-90 s to load on the shared 2-core box)."""
    import ray
    from ray import serve

    from rayrec.serve.planner import PlannerConfig, deploy

    app, pool = "test-lerl-planner", "test-lerl-pool"
    serve.start(proxy_location="Disabled")
    deploy(PlannerConfig(app_name=app, ray_actor_options={"num_cpus": 0.5}, batch_wait_timeout_s=0.05))
    config = (
        _config(
            env_config, planner="llm", planner_app=app, pool_name=pool, n_reflections=1, planner_timeout_s=60
        )
        .training(train_batch_size_per_learner=40, minibatch_size=20)
        .env_runners(
            num_env_runners=2, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.5, sample_timeout_s=300
        )
    )
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        totals = algo.env_runner_group.foreach_env_runner(
            lambda er: {**er.env.unwrapped.totals, **er.env.unwrapped.planner.stats()}, local_env_runner=False
        )
        assert len(totals) == 2
        print(f"LLM-planner totals per runner: {totals}; result lerl: {result['lerl']}")
        for t in totals:  # each runner reached the one planner and the one pool
            assert t["planner_requests"] > 0 and t["plans"] > 0
            assert t["sessions_to_pool"] > 0
        assert result["lerl"]["pool_size"] == sum(t["sessions_to_pool"] for t in totals)
        assert math.isfinite(result["learners"]["default_policy"]["policy_loss"])

        serve.delete(app)  # the planner is lost mid-training
        result = algo.train()
        assert result["env_runners"]["lerl"]["planner_fallbacks"] > 0
        assert math.isfinite(result["learners"]["default_policy"]["policy_loss"])
    finally:
        algo.stop()
        ray.kill(ray.get_actor(pool, namespace="rayrec"))
        serve.shutdown()


def test_fresh_users_of_one_replan_share_one_draw_of_lessons() -> None:
    fresh = np.array([True, False, True, False, True])
    sampled = [["a"], ["b"], ["shared"]]
    assert assign_lessons(fresh, sampled) == [["shared"], ["a"], ["shared"], ["b"], ["shared"]]
    with pytest.raises(ConfigError):
        assign_lessons(fresh, [["a"], ["shared"]])
