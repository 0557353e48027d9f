"""Quit models: when does a simulated user leave the session? All batched over B users.

Each model keeps its own per-user state in numpy arrays of B rows. The core calls, every step:
``modulate`` (a model may lower the response, e.g. fatigue) and then ``leave`` with the realised step
reward. ``reset_rows`` starts fresh users in some rows, so a batch can be a continuous stream of users.
Both step calls take ``rows``: when only some rows step (a vector env whose other rows are being
reset), the arrays passed in hold just those rows and only their state moves; ``None`` means all B.

- ``category_window`` is DORL/EasyRL4Rec's ``_determine_whether_to_leave`` (docs/design.md §13, DORL).
- ``temper`` is KuaiSim's whole-session leave signal (docs/design.md §13, KuaiSim), with LERL's reported
  "diversity-aware quit" as an opt-in extra decrement (off by default, so the default is KuaiSim's).
- ``fatigue`` is ours: per-category exposure that lowers the response and drains a satisfaction budget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from rayrec.errors import ConfigError


@dataclass
class QuitModel(ABC):
    """Base: stateless defaults; subclasses are dataclasses whose fields are their parameters."""

    name: ClassVar[str] = ""
    reason: ClassVar[str] = ""  # the ``quit_reason`` the env reports when this model ends a session

    def reset(self, batch_size: int, max_turn: int) -> None:
        """Allocate state for ``batch_size`` users whose sessions last at most ``max_turn`` steps."""
        self._batch_size = batch_size
        self._max_turn = max_turn

    @abstractmethod
    def reset_rows(self, rows: np.ndarray) -> None:
        """Fresh users start in ``rows``."""

    def modulate(
        self, item_cats: np.ndarray, response: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Response (R, k) to the shown items, after this model's effect; ``item_cats`` is (R, k, C)
        for the R stepping ``rows`` (all B when ``None``)."""
        return response

    @abstractmethod
    def leave(
        self, t: np.ndarray, item_cats: np.ndarray, reward: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """(R,) bool: does each stepping user leave after this step? ``t`` (R,) is the 0-based step index."""

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class CategoryWindowQuit(QuitModel):
    """DORL's rule: leave when a category of the new item appears more than ``threshold`` times among
    the last ``window`` recommended items (never at t = 0). Counts are over items, so an item with two
    categories adds one to each. With slates the window holds the items of the last ``window`` steps
    and any category of any new slate item can trigger.

    ``dorl_slicing_quirk`` reproduces the original ``sequence_action[t - window : t]`` on a Python
    list: for t < window the negative start wraps, so the window is items ``[max(0, 2t - window), t)``
    (sizes 1, 2, 1, 4 … for window 4). Off by default (window = the last min(t, window) items); turn it
    on only to compare numbers with DORL's tables. Defaults are the DORL paper's runs (N=4, threshold 0).
    """

    window: int = 4
    threshold: int = 0
    dorl_slicing_quirk: bool = False

    name: ClassVar[str] = "category_window"
    reason: ClassVar[str] = "category_repeat"

    def __post_init__(self) -> None:
        if self.window < 1 or self.threshold < 0:
            raise ConfigError(f"category_window needs window >= 1 and threshold >= 0 (got {self})")

    def reset(self, batch_size: int, max_turn: int) -> None:
        super().reset(batch_size, max_turn)
        self._cum: np.ndarray | None = None  # (B, max_turn + 1, C) category counts before step t

    def reset_rows(self, rows: np.ndarray) -> None:
        if self._cum is not None:
            self._cum[rows] = 0

    def leave(
        self, t: np.ndarray, item_cats: np.ndarray, reward: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        if self._cum is None:
            self._cum = np.zeros((self._batch_size, self._max_turn + 1, item_cats.shape[2]), dtype=np.int16)
        if rows is None:
            rows = np.arange(self._batch_size)
        if self.dorl_slicing_quirk:
            start = np.where(t < self.window, 2 * t - self.window, t - self.window)
        else:
            start = t - self.window
        start = np.maximum(start, 0)
        counts = self._cum[rows, t] - self._cum[rows, start]  # (B, C) occurrences in the window
        new_cats = item_cats.any(axis=1)  # (B, C)
        quit_ = ((counts > self.threshold) & new_cats).any(axis=1) & (t > 0)
        self._cum[rows, t + 1] = self._cum[rows, t] + item_cats.sum(axis=1, dtype=np.int16)
        return quit_


@dataclass
class TemperQuit(QuitModel):
    """KuaiSim's whole-session leave: temper starts at ``initial_temper`` and each step changes by
    ``clip(r_t - offset, -2, 0)`` (r_t = the step's slate-mean reward); the user leaves when temper < 1.
    With rewards in [0, 1] and the defaults, sessions last 10–20 steps and good items keep users longer.

    ``repeat_run``/``repeat_penalty`` is LERL's reported diversity-aware quit (known only from a
    secondary source; docs/design.md §13): when a category has been shown ``repeat_run`` steps in a
    row, temper drops by ``repeat_penalty`` more. ``repeat_penalty = 0`` (default) is KuaiSim
    exactly; without it, repetition shortens a session only through lower rewards.
    """

    initial_temper: float = 20.0
    offset: float = 2.0
    repeat_run: int = 3
    repeat_penalty: float = 0.0

    name: ClassVar[str] = "temper"
    reason: ClassVar[str] = "temper"

    def __post_init__(self) -> None:
        if self.repeat_run < 1 or self.repeat_penalty < 0:
            raise ConfigError(f"temper needs repeat_run >= 1 and repeat_penalty >= 0 (got {self})")

    def reset(self, batch_size: int, max_turn: int) -> None:
        super().reset(batch_size, max_turn)
        self.temper = np.full(batch_size, self.initial_temper, dtype=np.float64)
        self._run: np.ndarray | None = None  # (B, C) consecutive steps each category was shown

    def reset_rows(self, rows: np.ndarray) -> None:
        self.temper[rows] = self.initial_temper
        if self._run is not None:
            self._run[rows] = 0

    def leave(
        self, t: np.ndarray, item_cats: np.ndarray, reward: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        idx = _rows(rows)
        self.temper[idx] += np.clip(reward - self.offset, -2.0, 0.0)
        if self.repeat_penalty > 0:
            shown = item_cats.any(axis=1)  # (R, C)
            if self._run is None:
                self._run = np.zeros((self._batch_size, shown.shape[1]), dtype=np.int32)
            self._run[idx] = np.where(shown, self._run[idx] + 1, 0)
            self.temper[idx] -= self.repeat_penalty * (self._run[idx] >= self.repeat_run).any(axis=1)
        return self.temper[idx] < 1.0


@dataclass
class FatigueQuit(QuitModel):
    """Per-category exposure fatigue. Each step exposure decays by ``decay``; a shown item's response
    is multiplied by ``exp(-strength * e)``, e = the highest exposure among its categories; then each
    of its categories gains 1 exposure. The user's satisfaction budget starts at ``budget`` and loses
    ``1 - r_t`` each step (what the step failed to deliver), so repeats, which lower r_t, drain it
    faster; the user leaves when it is spent (<= 0).
    """

    decay: float = 0.8
    strength: float = 0.5
    budget: float = 5.0

    name: ClassVar[str] = "fatigue"
    reason: ClassVar[str] = "fatigue"

    def __post_init__(self) -> None:
        if not 0 <= self.decay <= 1 or self.strength < 0 or self.budget <= 0:
            raise ConfigError(f"fatigue needs 0 <= decay <= 1, strength >= 0 and budget > 0 (got {self})")

    def reset(self, batch_size: int, max_turn: int) -> None:
        super().reset(batch_size, max_turn)
        self.remaining = np.full(batch_size, self.budget, dtype=np.float64)
        self.exposure: np.ndarray | None = None  # (B, C)

    def reset_rows(self, rows: np.ndarray) -> None:
        self.remaining[rows] = self.budget
        if self.exposure is not None:
            self.exposure[rows] = 0.0

    def modulate(
        self, item_cats: np.ndarray, response: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        idx = _rows(rows)
        if self.exposure is None:
            self.exposure = np.zeros((self._batch_size, item_cats.shape[2]), dtype=np.float32)
        self.exposure[idx] *= self.decay
        # (R, k): highest exposure among each item's categories (0 for items without any)
        e = np.where(item_cats, self.exposure[idx][:, None, :], 0.0).max(axis=2)
        self.exposure[idx] += item_cats.sum(axis=1)
        return response * np.exp(-self.strength * e).astype(np.float32)

    def leave(
        self, t: np.ndarray, item_cats: np.ndarray, reward: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        idx = _rows(rows)
        self.remaining[idx] -= 1.0 - reward
        return self.remaining[idx] <= 0.0


def _rows(rows: np.ndarray | None) -> slice | np.ndarray:
    """Index for the stepping rows: a slice for all of them keeps the full-batch path copy-free."""
    return slice(None) if rows is None else rows


QUIT_MODELS: dict[str, type[QuitModel]] = {m.name: m for m in (CategoryWindowQuit, TemperQuit, FatigueQuit)}


def make_quit_model(name: str, params: dict | None = None) -> QuitModel:
    """Build a quit model by name; ``params`` override its defaults and unknown keys raise."""
    try:
        cls = QUIT_MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown quit model {name!r}; known: {', '.join(QUIT_MODELS)}") from None
    params = dict(params or {})
    known = {f.name for f in fields(cls)}
    unknown = set(params) - known
    if unknown:
        raise ConfigError(
            f"quit model {name!r} has no parameter(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    return cls(**params)
