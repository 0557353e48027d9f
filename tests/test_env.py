"""RecSimEnv and the batched core on ml-100k with a fitted MF response model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rayrec.data.dataset import Dataset
from rayrec.data.registry import load_dataset
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.quit_models import QUIT_MODELS
from rayrec.envs.recsim_env import RecSimEnv
from rayrec.envs.registration import create_env, make_env_config
from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError

# Quit settings under which nobody ever leaves before max_turn.
NEVER_QUIT = {
    "category_window": {"threshold": 10_000},
    "temper": {"initial_temper": 1e6},
    "fatigue": {"budget": 1e6},
}


@pytest.fixture(scope="module")
def ml100k() -> Dataset:
    return load_dataset("ml-100k")


@pytest.fixture(scope="module")
def mf(ml100k: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[ResponseModel, Path]:
    return cached_response_model("ml-100k", path=tmp_path_factory.mktemp("mf"))


def _random_episode(env: RecSimEnv, seed: int, actions_seed: int) -> list:
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(actions_seed)
    trace = [(info["user"], {k: v.tolist() for k, v in obs.items()})]
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(int(rng.integers(env.core.n_items)))
        trace.append((r, term, trunc, info["quit_reason"], {k: v.tolist() for k, v in obs.items()}))
        done = term or trunc
    return trace


def test_observations_lie_in_the_space_and_history_is_recorded(ml100k: Dataset, mf: tuple) -> None:
    env = RecSimEnv(mf[0], ml100k.categories, SimConfig(history_len=4))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert (obs["history_items"] == ml100k.n_items).all() and obs["step"][0] == 0
    for t, item in enumerate([10, 20, 30, 40, 50]):
        obs, reward, term, trunc, info = env.step(item)
        assert env.observation_space.contains(obs)
        assert obs["history_items"][-1] == item and obs["history_rewards"][-1] == pytest.approx(reward)
        assert obs["step"][0] == t + 1
        if term or trunc:
            break
    shown, mean = env.category_history()
    np.testing.assert_array_equal(shown, obs["category_shown"])
    assert shown.sum() == ml100k.categories[[10, 20, 30, 40, 50][: int(obs["step"][0])]].sum()
    assert ((mean >= 0) & (mean <= 1)).all()


def test_category_mask_is_set_from_outside_and_reset_per_session(ml100k: Dataset, mf: tuple) -> None:
    env = RecSimEnv(mf[0], ml100k.categories, SimConfig())
    with pytest.raises(ConfigError, match="reset"):
        env.set_category_mask(np.ones(ml100k.n_categories))
    env.reset(seed=0)
    mask = np.zeros(ml100k.n_categories, dtype=np.int8)
    mask[[1, 8]] = 1
    env.set_category_mask(mask)
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(obs["category_mask"], mask)
    allowed = env.core.allowed_items()[0]
    np.testing.assert_array_equal(allowed, ml100k.categories[:, [1, 8]].any(1))
    obs, _ = env.reset()
    assert obs["category_mask"].all()


def test_slates_and_user_features(ml100k: Dataset, mf: tuple) -> None:
    from rayrec.envs.core import encode_user_features

    feats = encode_user_features(ml100k.user_features)
    env = RecSimEnv(mf[0], ml100k.categories, SimConfig(slate_size=3, user_features=True), feats)
    assert env.action_space.shape == (3,)
    obs, info = env.reset(seed=3)
    np.testing.assert_array_equal(obs["user_features"], feats[info["user"]])
    obs, reward, *_ = env.step(np.array([5, 6, 7]))
    assert env.observation_space.contains(obs)
    assert list(obs["history_items"][-3:]) == [5, 6, 7]
    with pytest.raises(ConfigError, match="slates of 3"):
        env.step(5)
    with pytest.raises(ConfigError, match="no user features"):
        BatchedRecSim(mf[0], ml100k.categories, SimConfig(user_features=True))


def _finished_lengths(core: BatchedRecSim, pick: Callable[[np.ndarray], np.ndarray], n_rows: int, steps: int):
    """Run a stream of sessions (finished rows restart) and return every finished session's
    (length, quit reason); ``pick(t)`` maps the rows' step indices (B,) to items (B, k)."""
    core.reset(n_rows)
    lengths, reasons = [], []
    for _ in range(steps):
        out = core.step(pick(core.t.copy()))
        ended = np.flatnonzero(out.terminated | out.truncated)
        lengths += core.t[ended].tolist()
        reasons += out.quit_reasons()[ended].tolist()
        core.reset_done()
    return np.array(lengths), np.array(reasons)


@pytest.mark.parametrize("quit_model", sorted(NEVER_QUIT))
def test_episodes_always_end_by_max_turn(ml100k: Dataset, mf: tuple, quit_model: str) -> None:
    rng = np.random.default_rng(0)

    def random_items(t: np.ndarray) -> np.ndarray:
        return rng.integers(0, ml100k.n_items, (len(t), 1))

    for params, never_quits in [(NEVER_QUIT[quit_model], True), ({}, False)]:
        cfg = SimConfig(quit_model=quit_model, quit_params=params, max_turn=25, seed=1)
        core = BatchedRecSim(mf[0], ml100k.categories, cfg)
        lengths, reasons = _finished_lengths(core, random_items, 64, 80)
        assert len(lengths) >= 64 and lengths.min() >= 1 and lengths.max() <= 25
        if never_quits:
            assert (lengths == 25).all() and (reasons == "max_turn").all()
        else:
            assert set(reasons) <= {QUIT_MODELS[quit_model].reason, "max_turn"}


def test_same_seed_gives_the_same_episode(ml100k: Dataset, mf: tuple) -> None:
    cfg = SimConfig(quit_model="temper", response_sampling="bernoulli", reward_noise=0.1)
    a = RecSimEnv(mf[0], ml100k.categories, cfg)
    b = RecSimEnv(mf[0], ml100k.categories, cfg)
    first = _random_episode(a, seed=7, actions_seed=0)
    assert first == _random_episode(b, seed=7, actions_seed=0)
    assert first == _random_episode(a, seed=7, actions_seed=0)
    assert first != _random_episode(a, seed=8, actions_seed=0)


@pytest.mark.parametrize(
    ("quit_model", "params", "slate"),
    [
        ("category_window", {}, 1),
        ("fatigue", {}, 1),
        ("temper", {}, 6),  # KuaiSim as published: slates of 6, repeats cost through item correlation
        ("temper", {"repeat_penalty": 1.0}, 1),  # LERL's diversity-aware extra
    ],
)
def test_repeat_heavy_policy_gets_shorter_sessions(
    ml100k: Dataset, mf: tuple, quit_model: str, params: dict, slate: int
) -> None:
    cats = ml100k.categories
    single = cats.sum(1) == 1
    # table[c, :count[c]] = the single-category items of category c; pick uniformly among them
    count = np.array([(single & cats[:, c]).sum() for c in range(cats.shape[1])])
    table = np.zeros((cats.shape[1], count.max()), dtype=np.int64)
    for c in range(cats.shape[1]):
        table[c, : count[c]] = np.flatnonzero(single & cats[:, c])
    rotation = np.flatnonzero(count > 0)
    top = int(np.argmax(cats.sum(0)))  # the most common category (Drama)
    rng = np.random.default_rng(0)

    def from_categories(c: np.ndarray) -> np.ndarray:
        return table[c, (rng.random(c.shape) * count[c]).astype(np.int64)]

    def repeat_heavy(t: np.ndarray) -> np.ndarray:
        return from_categories(np.full((len(t), slate), top))

    def diverse(t: np.ndarray) -> np.ndarray:
        return from_categories(rotation[(t[:, None] * slate + np.arange(slate)) % len(rotation)])

    cfg = SimConfig(quit_model=quit_model, quit_params=params, slate_size=slate, max_turn=30)
    core = BatchedRecSim(mf[0], cats, cfg)
    short = _finished_lengths(core, repeat_heavy, 128, 60)[0].mean()
    long = _finished_lengths(core, diverse, 128, 60)[0].mean()
    assert short < long, (short, long)


def test_create_env_from_env_config_gives_each_instance_its_own_seed(mf: tuple) -> None:
    config = make_env_config("ml-100k", mf[1], SimConfig(quit_model="fatigue", seed=3))
    e1, e2 = create_env(config), create_env(config)
    assert e1.core.config.quit_model == "fatigue"
    users1 = [e1.reset()[1]["user"] for _ in range(5)]
    users2 = [e2.reset()[1]["user"] for _ in range(5)]
    assert users1 != users2
    with pytest.raises(ConfigError, match="unknown simulator setting"):
        make_env_config("ml-100k", mf[1], {"max_turns": 3})
