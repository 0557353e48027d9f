"""Run many simulated sessions on the batched core and report their long-term metrics.

Exactly ``n_episodes`` sessions are *started* and every one of them is run to its end. Rows of the
batch whose quota is used up keep stepping fresh users (the core steps all rows at once) but those
extra sessions are never counted: counting the first n sessions to *finish* instead would favour
short sessions and bias Len and R_tra downwards.

:func:`simulate_policy` runs a named reference policy on a dataset's simulator; ``rayrec simulate`` and
the demo both call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rayrec.data import Dataset
from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.policies import make_policy
from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError
from rayrec.eval import dominating_categories, session_report

Policy = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


@dataclass
class Sessions:
    """Finished sessions in start order; ``items[s]`` is (len_s, k), ``rewards[s]`` is (len_s,)."""

    users: np.ndarray  # (n,)
    items: list[np.ndarray]
    rewards: list[np.ndarray]
    quit_reasons: list[str]

    def item_categories(self, categories: np.ndarray) -> list[np.ndarray]:
        """Per session, (len_s, C) categories of each step's items (a slate's union)."""
        return [np.asarray(categories, bool)[it].any(axis=1) for it in self.items]

    def report(self, categories: np.ndarray, dominating: np.ndarray) -> dict[str, tuple[float, float]]:
        """R_tra, R_each, Len, category coverage/entropy and MCD as (mean, 95% CI half-width)."""
        return session_report(self.rewards, self.item_categories(categories), dominating)

    def quit_counts(self) -> dict[str, int]:
        reasons, counts = np.unique(np.asarray(self.quit_reasons, dtype=str), return_counts=True)
        return {str(r): int(c) for r, c in zip(reasons, counts)}


def run_sessions(core: BatchedRecSim, act: Policy, n_episodes: int, batch_size: int = 1024) -> Sessions:
    """Run ``n_episodes`` sessions, ``batch_size`` at a time, with ``act(obs, users) -> actions``.

    Users are drawn by the core's seeded generator, so a fixed core seed and a deterministic (or
    equally seeded) policy give the same sessions.
    """
    if n_episodes < 1 or batch_size < 1:
        raise ConfigError(f"n_episodes and batch_size must be >= 1 (got {n_episodes}, {batch_size})")
    b = min(batch_size, n_episodes)
    max_turn, k = core.config.max_turn, core.config.slate_size
    obs = core.reset(b)
    session_of_row = np.arange(b)  # which counted session each row runs; -1 once past the quota
    started = b
    items_buf = np.zeros((b, max_turn, k), dtype=np.int64)
    rewards_buf = np.zeros((b, max_turn), dtype=np.float32)
    users = np.zeros(n_episodes, dtype=np.int64)
    users[:b] = core.users
    out_items: list[np.ndarray | None] = [None] * n_episodes
    out_rewards: list[np.ndarray | None] = [None] * n_episodes
    out_reasons = [""] * n_episodes
    remaining = n_episodes
    while remaining:
        t = core.t.copy()
        actions = act(obs, core.users)
        step = core.step(actions)
        items_buf[np.arange(b), t] = np.asarray(actions, dtype=np.int64).reshape(b, k)
        rewards_buf[np.arange(b), t] = step.reward
        ended = np.flatnonzero(core.done)
        reasons = step.quit_reasons()
        for row in ended:
            s = session_of_row[row]
            if s >= 0:
                n = t[row] + 1
                out_items[s] = items_buf[row, :n].copy()
                out_rewards[s] = rewards_buf[row, :n].copy()
                out_reasons[s] = str(reasons[row])
                remaining -= 1
        if len(ended):
            core.reset_done()
            fresh = min(len(ended), n_episodes - started)
            session_of_row[ended] = -1
            session_of_row[ended[:fresh]] = np.arange(started, started + fresh)
            users[started : started + fresh] = core.users[ended[:fresh]]
            started += fresh
            obs = core.observe()
        else:
            obs = step.obs
    return Sessions(users, out_items, out_rewards, out_reasons)  # type: ignore[arg-type]


def simulate_policy(
    ds: Dataset, model: ResponseModel, policy: str, config: SimConfig, episodes: int, batch_size: int = 1024
) -> tuple[dict[str, tuple[float, float]], Sessions]:
    """Run ``episodes`` sessions of a reference policy; long-term metrics as {name: (mean, ci95)}.

    Popularity and the dominating categories (for MCD) come from ``ds``'s interactions.
    """
    core = BatchedRecSim(model, ds.categories, config)
    pol = make_policy(
        policy,
        ds.categories,
        popularity=ds.item_popularity(),
        response=model,
        slate_size=config.slate_size,
        seed=config.seed,
    )
    sessions = run_sessions(core, pol.act, episodes, batch_size=batch_size)
    dominating = dominating_categories(ds.interactions["item"].to_numpy(), ds.categories)
    return sessions.report(ds.categories, dominating), sessions
