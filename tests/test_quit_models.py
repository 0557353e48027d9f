"""Quit models against direct, loop-based transcriptions of their published rules.

The batched core steps many users at once, each at its own step index (finished rows restart at
once), and every step of every row is compared with a one-user-at-a-time reference.
"""

from __future__ import annotations

import functools
import math
import operator
from collections import Counter

import numpy as np
import pytest

from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.quit_models import QUIT_MODELS, make_quit_model
from rayrec.envs.response import LatentResponseModel
from rayrec.errors import ConfigError


def _world(n_items: int, n_cat: int, seed: int) -> tuple[LatentResponseModel, np.ndarray]:
    """A random catalog (1-3 categories per item) and a latent-factor ground truth."""
    rng = np.random.default_rng(seed)
    cats = np.zeros((n_items, n_cat), dtype=bool)
    for i in range(n_items):
        cats[i, rng.choice(n_cat, size=rng.integers(1, 4), replace=False)] = True
    model = LatentResponseModel(
        rng.normal(0, 0.5, (50, 8)), rng.normal(0, 0.5, (n_items, 8)), rng.normal(0, 1, n_items)
    )
    return model, cats


class DorlUser:
    """DORL/EasyRL4Rec KuaiEnv, transcribed: ``_determine_whether_to_leave`` and ``step``'s done."""

    def __init__(
        self,
        list_feat: list[list[int]],
        num_leave_compute: int,
        leave_threshold: int,
        max_turn: int,
        quirk: bool,
    ) -> None:
        self.list_feat = list_feat
        self.num_leave_compute = num_leave_compute
        self.leave_threshold = leave_threshold
        self.max_turn = max_turn
        self.quirk = quirk
        self.sequence_action: list[int] = []
        self.total_turn = 0

    def _determine_whether_to_leave(self, t: int, action: int) -> bool:
        if t == 0:
            return False
        if self.quirk:  # the original: a Python list sliced with a possibly negative start
            window_actions = self.sequence_action[t - self.num_leave_compute : t]
        else:
            window_actions = self.sequence_action[max(0, t - self.num_leave_compute) : t]
        hist_categories_each = list(map(lambda x: self.list_feat[x], window_actions))
        hist_categories = functools.reduce(operator.iadd, hist_categories_each, [])
        hist_dict = Counter(hist_categories)
        category_a = self.list_feat[action]
        for c in category_a:  # noqa: SIM110 (kept as in the original)
            if hist_dict[c] > self.leave_threshold:
                return True
        return False

    def step(self, action: int) -> tuple[bool, bool]:
        """(left by the rule, done)."""
        t = self.total_turn
        left = self._determine_whether_to_leave(t, action)
        done = left or t >= self.max_turn - 1
        self.sequence_action.append(action)
        self.total_turn += 1
        return left, done


@pytest.mark.parametrize(
    ("window", "threshold", "quirk", "n_cat"),
    [
        (4, 0, False, 80),
        (4, 0, True, 80),
        (10, 0, True, 300),
        (10, 1, True, 40),
        (9, 1, False, 19),
        (3, 2, True, 8),
    ],
)
def test_category_window_matches_dorl_transcription(
    window: int, threshold: int, quirk: bool, n_cat: int
) -> None:
    model, cats = _world(300, n_cat, seed=window * 7 + threshold)
    list_feat = [list(np.flatnonzero(row)) for row in cats]
    params = {"window": window, "threshold": threshold, "dorl_slicing_quirk": quirk}
    core = BatchedRecSim(
        model, cats, SimConfig(quit_model="category_window", quit_params=params, max_turn=30)
    )
    b = 32
    core.reset(b)
    refs = [DorlUser(list_feat, window, threshold, 30, quirk) for _ in range(b)]
    rng = np.random.default_rng(1)
    n_quit = n_trunc = 0
    for _ in range(400):
        actions = rng.integers(0, 300, b)
        out = core.step(actions)
        for row in range(b):
            left, done = refs[row].step(int(actions[row]))
            assert bool(out.terminated[row]) == left, (row, refs[row].total_turn)
            assert bool(out.terminated[row] or out.truncated[row]) == done
            assert out.quit_reasons()[row] == ("category_repeat" if left else "max_turn" if done else "")
        n_quit += int(out.terminated.sum())
        n_trunc += int(out.truncated.sum())
        for row in core.reset_done():
            refs[row] = DorlUser(list_feat, window, threshold, 30, quirk)
    assert n_quit > 50  # the rule fired often enough to be exercised
    if n_cat >= 80:
        assert n_trunc > 0  # and some sessions ran to max_turn


@pytest.mark.parametrize(("quirk", "leaves"), [(True, False), (False, True)])
def test_dorl_slicing_quirk_shrinks_early_windows(quirk: bool, leaves: bool) -> None:
    """At t = 3 with N = 4 the original slice ``seq[-1:3]`` holds only item 2 (sizes 1, 2, 1, 4 …), so
    repeating item 1's category goes unnoticed with the quirk and ends the session without it."""
    cats = np.eye(4, dtype=bool)
    model = LatentResponseModel(np.zeros((1, 1)), np.zeros((4, 1)))
    params = {"window": 4, "threshold": 0, "dorl_slicing_quirk": quirk}
    core = BatchedRecSim(model, cats, SimConfig(quit_model="category_window", quit_params=params))
    core.reset(1)
    for item in [0, 1, 2]:
        assert not core.step(np.array([item])).terminated[0]
    assert bool(core.step(np.array([1])).terminated[0]) == leaves


def _kuaisim_temper(rewards: list[float], initial_temper: float, offset: float) -> list[bool]:
    """KuaiSim's get_leave_signal over one session: temper += clip(r - offset, -2, 0); leave if < 1."""
    temper, out = initial_temper, []
    for r in rewards:
        temper += min(max(r - offset, -2.0), 0.0)
        out.append(temper < 1)
    return out


@pytest.mark.parametrize(
    ("initial", "offset", "sampling"),
    [(20.0, 2.0, "expected"), (10.0, 2.0, "bernoulli"), (12.0, 1.5, "expected")],
)
def test_temper_matches_kuaisim(initial: float, offset: float, sampling: str) -> None:
    model, cats = _world(200, 12, seed=3)
    params = {"initial_temper": initial, "offset": offset}
    cfg = SimConfig(quit_model="temper", quit_params=params, max_turn=1000, response_sampling=sampling)
    core = BatchedRecSim(model, cats, cfg)
    b = 16
    core.reset(b)
    rewards: list[list[float]] = [[] for _ in range(b)]
    rng = np.random.default_rng(0)
    lengths = []
    for _ in range(300):
        out = core.step(rng.integers(0, 200, b))
        assert not out.truncated.any()
        for row in range(b):
            rewards[row].append(float(out.reward[row]))
            assert bool(out.terminated[row]) == _kuaisim_temper(rewards[row], initial, offset)[-1]
        for row in core.reset_done():
            assert out.quit_reasons()[row] == "temper"
            lengths.append(len(rewards[row]))
            rewards[row] = []
    if offset == 2.0:  # rewards in [0, 1] make every step cost 1..2 temper: 10..20 steps from 20
        lo, hi = math.ceil((initial - 1) / 2 + 1e-9), math.floor(initial)
        assert lengths and lo <= min(lengths) and max(lengths) <= hi


def test_temper_repeat_penalty_follows_category_runs() -> None:
    """LERL's diversity-aware extra: -penalty whenever a category has been shown ``run`` steps in a row."""
    cats = np.eye(3, dtype=bool)  # item i has category i
    model = LatentResponseModel(np.zeros((2, 1)), np.zeros((3, 1)))  # every response is sigmoid(0) = 0.5
    params = {"initial_temper": 30.0, "repeat_run": 2, "repeat_penalty": 1.0}
    core = BatchedRecSim(model, cats, SimConfig(quit_model="temper", quit_params=params, max_turn=100))
    core.reset(1)
    temper, runs, penalties = 30.0, np.zeros(3), 0
    for item in [0, 0, 0, 1, 2, 2, 1, 1]:
        out = core.step(np.array([item]))
        temper += min(max(0.5 - 2.0, -2.0), 0.0)
        runs = np.where(cats[item], runs + 1, 0)
        if (runs >= 2).any():
            temper -= 1.0
            penalties += 1
        assert core.quit_model.temper[0] == pytest.approx(temper)
        assert bool(out.terminated[0]) == (temper < 1)
    assert penalties == 4  # steps 2, 3, 6 and 8 extend a run of >= 2


def test_fatigue_matches_its_definition() -> None:
    model, cats = _world(100, 6, seed=5)
    params = {"decay": 0.7, "strength": 0.4, "budget": 3.0}
    core = BatchedRecSim(model, cats, SimConfig(quit_model="fatigue", quit_params=params, max_turn=1000))
    core.reset(4, users=np.arange(4))
    exposure = np.zeros((4, 6))
    budget = np.full(4, 3.0)
    rng = np.random.default_rng(2)
    for _ in range(6):
        items = rng.integers(0, 100, 4)
        raw = model.score(core.users, items)
        out = core.step(items)
        exposure *= 0.7
        e = np.array([exposure[r, cats[i]].max() for r, i in enumerate(items)])
        want = raw * np.exp(-0.4 * e)
        exposure += cats[items]
        budget -= 1 - want
        np.testing.assert_allclose(out.reward, want, rtol=1e-5)
        np.testing.assert_array_equal(out.terminated, budget <= 0)
        if out.terminated.any():
            break


def test_unknown_quit_model_or_parameter_says_what_is_known() -> None:
    with pytest.raises(ConfigError, match="known: category_window, temper, fatigue"):
        make_quit_model("boredom")
    with pytest.raises(ConfigError, match="no parameter"):
        make_quit_model("temper", {"windw": 3})
    assert set(QUIT_MODELS) == {"category_window", "temper", "fatigue"}
