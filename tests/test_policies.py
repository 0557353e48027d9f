"""Reference policies and rollouts on the real batched core, with ml-100k's catalog and a fitted MF."""

from __future__ import annotations

import numpy as np
import pytest

from rayrec.data import load_dataset, random_holdout
from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.fitting import fit_response_model
from rayrec.envs.policies import POLICIES, make_policy
from rayrec.envs.rollout import run_sessions
from rayrec.errors import ConfigError
from rayrec.eval import dominating_categories


@pytest.fixture(scope="module")
def world():
    ds = load_dataset("ml-100k")
    model, _ = fit_response_model(*random_holdout(ds, test_frac=0.1, seed=0), kind="mf")
    return ds, model


def _policy(world, name, slate_size=1, seed=0):
    ds, model = world
    return make_policy(
        name, ds.categories, popularity=ds.item_popularity(), response=model, slate_size=slate_size, seed=seed
    )


def _run(world, name, quit_model="category_window", n=200, seed=0, slate_size=1, batch_size=64, **quit):
    ds, model = world
    cfg = SimConfig(quit_model=quit_model, quit_params=quit, seed=seed, slate_size=slate_size)
    core = BatchedRecSim(model, ds.categories, cfg)
    return run_sessions(core, _policy(world, name, slate_size, seed).act, n, batch_size=batch_size)


@pytest.mark.parametrize("name", POLICIES)
def test_no_item_is_shown_twice_in_a_session(world, name):
    # window 1 / threshold 30: sessions run to max_turn, so every session has 30 steps to repeat in
    sessions = _run(world, name, window=1, threshold=30)
    assert all(len(it) == 30 for it in sessions.items)
    for items in sessions.items:
        assert len(np.unique(items)) == items.size


def test_first_actions_follow_each_policys_rule(world):
    ds, model = world
    core = BatchedRecSim(model, ds.categories, SimConfig(seed=0))
    obs = core.reset(8)
    pop = ds.item_popularity()
    assert (_policy(world, "popularity").act(obs, core.users) == pop.argmax()).all()
    greedy = _policy(world, "greedy").act(obs, core.users)
    np.testing.assert_array_equal(greedy, model.score_all(core.users).argmax(axis=1))
    top_category = np.argmax(pop @ ds.categories)
    assert ds.categories[_policy(world, "round_robin").act(obs, core.users), top_category].all()


def test_round_robin_cycles_categories_most_popular_first(world):
    ds, _ = world
    order = np.argsort(-(ds.item_popularity() @ ds.categories), kind="stable")
    sessions = _run(world, "round_robin", window=1, threshold=30, n=5)
    for items in sessions.items:
        turn = order[np.arange(len(items)) % ds.n_categories]  # the category of each step's turn
        assert ds.categories[items[:, 0], turn].all()


@pytest.mark.parametrize("name", POLICIES)
def test_policies_respect_the_planners_category_mask(world, name):
    ds, model = world
    core = BatchedRecSim(model, ds.categories, SimConfig(quit_model="temper", seed=1))
    policy = _policy(world, name)
    obs = core.reset(16)
    allowed = np.zeros((16, ds.n_categories), dtype=np.int8)
    allowed[:8, 1] = 1  # Action
    allowed[8:, [4, 5]] = 1  # Children's, Comedy
    for _ in range(10):
        core.set_category_mask(allowed)
        obs = core.observe()
        actions = policy.act(obs, core.users)
        assert (ds.categories[actions] & allowed.astype(bool)).any(axis=1).all()
        core.step(actions)
        if core.done.any():
            break


def test_slates_hold_k_distinct_items(world):
    sessions = _run(world, "greedy", quit_model="temper", slate_size=4, n=50)
    for items in sessions.items:
        assert items.shape[1] == 4 and len(np.unique(items)) == items.size


def test_rollout_runs_exactly_the_sessions_it_starts(world):
    sessions = _run(world, "random", quit_model="fatigue", n=150, batch_size=32)
    assert len(sessions.items) == len(sessions.rewards) == len(sessions.quit_reasons) == 150
    assert all(0 < len(r) <= 30 and len(r) == len(i) for r, i in zip(sessions.rewards, sessions.items))
    assert set(sessions.quit_reasons) <= {"fatigue", "max_turn"} and "" not in sessions.quit_reasons
    assert sum(sessions.quit_counts().values()) == 150


def test_rollout_length_does_not_depend_on_batch_size(world):
    # Counting the first sessions to *finish* would drop the long sessions still in flight, more so
    # the larger the batch; counting the sessions *started* keeps the mean length batch-independent.
    ds, _ = world
    dom = dominating_categories(ds.interactions["item"].to_numpy(), ds.categories)
    one = _run(world, "random", quit_model="temper", n=400, batch_size=300).report(ds.categories, dom)["Len"]
    many = _run(world, "random", quit_model="temper", n=400, batch_size=7, seed=1).report(ds.categories, dom)
    assert abs(one[0] - many["Len"][0]) < 2 * (one[1] + many["Len"][1])


@pytest.mark.parametrize("name", POLICIES)
def test_same_seed_same_sessions(world, name):
    a = _run(world, name, quit_model="fatigue", n=40, seed=3)
    b = _run(world, name, quit_model="fatigue", n=40, seed=3)
    np.testing.assert_array_equal(a.users, b.users)
    for x, y in zip(a.items + a.rewards, b.items + b.rewards):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("quit_model", ["category_window", "fatigue"])
def test_diverse_round_robin_outlasts_repeat_heavy_popularity(world, quit_model):
    ds, _ = world
    dom = dominating_categories(ds.interactions["item"].to_numpy(), ds.categories)
    pop = _run(world, "popularity", quit_model=quit_model, n=300).report(ds.categories, dom)
    rr = _run(world, "round_robin", quit_model=quit_model, n=300).report(ds.categories, dom)
    assert rr["Len"][0] - rr["Len"][1] > pop["Len"][0] + pop["Len"][1]
    assert rr["cat_entropy"][0] > pop["cat_entropy"][0]


@pytest.mark.parametrize("quit_model", ["category_window", "temper", "fatigue"])
def test_greedy_earns_more_per_step_than_random(world, quit_model):
    ds, _ = world
    dom = dominating_categories(ds.interactions["item"].to_numpy(), ds.categories)
    rnd = _run(world, "random", quit_model=quit_model, n=300).report(ds.categories, dom)["R_each"]
    greedy = _run(world, "greedy", quit_model=quit_model, n=300).report(ds.categories, dom)["R_each"]
    assert greedy[0] - greedy[1] > rnd[0] + rnd[1]


def test_unknown_or_incomplete_policies_raise(world):
    ds, _ = world
    with pytest.raises(ConfigError, match="unknown policy"):
        make_policy("oracle", ds.categories)
    with pytest.raises(ConfigError, match="needs the response model"):
        make_policy("greedy", ds.categories)
    with pytest.raises(ConfigError, match="needs item popularity"):
        make_policy("popularity", ds.categories)
