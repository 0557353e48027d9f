"""RecSimEnv: the simulator as a one-user gymnasium env, the shape RLlib's EnvRunners step.

It runs the batched core with B = 1, so the gym env and the batched core can never disagree about
the rules. Observation (a Dict; flatten it for RLlib's default MLP, see ``registration.py``):

- ``history_items`` (H,) int64: the last H recommended items, ``n_items`` marks empty slots;
- ``history_rewards`` (H,) float32: their responses;
- ``step`` (1,) int64: steps taken this session;
- ``category_mask`` (C,) int8: allowed categories, all ones unless a planner set them;
- ``category_shown`` / ``category_reward`` (C,) float32: per-category times shown and mean response
  this session (with ``category_history_obs``);
- ``user_features`` (F,) float32 (with ``user_features``).

Action: ``Discrete(n_items)``, or ``MultiDiscrete([n_items] * k)`` for slates.
``info["quit_reason"]`` is "" while the session goes on, else "category_repeat", "temper",
"fatigue" or "max_turn".
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.response import ResponseModel


class RecSimEnv(gym.Env):
    """One simulated user per episode."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        response: ResponseModel,
        categories: np.ndarray,
        config: SimConfig | None = None,
        user_features: np.ndarray | None = None,
    ) -> None:
        self.core = BatchedRecSim(response, categories, config, user_features)
        self.observation_space, self.action_space = user_spaces(self.core)

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        """``options={"user": u}`` picks the user; otherwise one is drawn from the env's generator."""
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        users = None if not options or "user" not in options else np.array([options["user"]])
        return _row(self.core.reset(1, users)), {"user": int(self.core.users[0])}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        out = self.core.step(np.asarray(action, dtype=np.int64).reshape(1, -1))
        info = {"quit_reason": out.quit_reasons()[0], "user": int(self.core.users[0])}
        return _row(out.obs), float(out.reward[0]), bool(out.terminated[0]), bool(out.truncated[0]), info

    def set_category_mask(self, mask: np.ndarray) -> None:
        """Allowed categories (C,) for the current session (a new session starts with all ones)."""
        self.core.set_category_mask(np.asarray(mask, dtype=np.int8))

    def category_history(self) -> tuple[np.ndarray, np.ndarray]:
        """This session's (times shown (C,), mean response (C,)) per category, for the LLM planner."""
        shown, mean = self.core.category_history()
        return shown[0], mean[0]


def user_spaces(core: BatchedRecSim) -> tuple[gym.spaces.Dict, gym.Space]:
    """One user's (observation space, action space); the vector env batches these same spaces."""
    cfg = core.config
    n, c, h = core.n_items, core.n_categories, cfg.history_len
    spaces: dict[str, gym.Space] = {
        "history_items": gym.spaces.Box(0, n, (h,), np.int64),
        "history_rewards": gym.spaces.Box(0.0, 1.0, (h,), np.float32),
        "step": gym.spaces.Box(0, cfg.max_turn, (1,), np.int64),
        "category_mask": gym.spaces.MultiBinary(c),
    }
    if cfg.category_history_obs:
        spaces["category_shown"] = gym.spaces.Box(0.0, float(cfg.max_turn * cfg.slate_size), (c,), np.float32)
        spaces["category_reward"] = gym.spaces.Box(0.0, 1.0, (c,), np.float32)
    if core.user_features is not None:
        f = core.user_features.shape[1]
        spaces["user_features"] = gym.spaces.Box(-np.inf, np.inf, (f,), np.float32)
    if cfg.slate_size == 1:
        action: gym.Space = gym.spaces.Discrete(n)
    else:
        action = gym.spaces.MultiDiscrete([n] * cfg.slate_size)
    return gym.spaces.Dict(spaces), action


def _row(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v[0] for k, v in obs.items()}
