"""RecSimVectorEnv: num_envs simulated users as ONE gymnasium VectorEnv over one batched core.

RLlib's default (SYNC) vectorisation steps ``num_envs_per_env_runner`` one-user RecSimEnvs one after
another, each a B = 1 core step; here one core step serves every sub-env, which is what makes the
batched core's speed reach the EnvRunners. RLlib builds it with
``.env_runners(gym_env_vectorize_mode="vector_entry_point", num_envs_per_env_runner=k)``.

Autoreset is gymnasium 1.x NEXT_STEP, the mode RLlib's sample loop expects: when row i ends at step t,
step t + 1 ignores row i's action, starts a new user there and returns that user's first observation
with reward 0 and neither terminated nor truncated, while the other rows step on
(``BatchedRecSim.step(actions, rows=...)``). Observations and actions are the one-user spaces of
RecSimEnv batched by ``gymnasium.vector.utils.batch_space``. Infos are vector-style: ``quit_reason``
(object array, "" while the session goes on; masked out by ``_quit_reason`` on rows that were reset)
and ``user`` (every row).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.recsim_env import user_spaces
from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError


class RecSimVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` independent one-user sessions stepped together."""

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        response: ResponseModel,
        categories: np.ndarray,
        config: SimConfig | None = None,
        user_features: np.ndarray | None = None,
    ) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.core = BatchedRecSim(response, categories, config, user_features)
        self.single_observation_space, self.single_action_space = user_spaces(self.core)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)  # rows that ended last step

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        """Start a new user in every row. ``options={"users": ids}`` picks them (num_envs ids);
        otherwise they are drawn from the env's generator, reseeded by ``seed``."""
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        users = None if not options or "users" not in options else np.asarray(options["users"])
        obs = self.core.reset(self.num_envs, users)
        self._autoreset[:] = False
        return obs, {"user": self.core.users.copy(), "_user": np.ones(self.num_envs, dtype=bool)}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        resetting = np.flatnonzero(self._autoreset)
        if len(resetting):
            self.core.reset_rows(resetting)
            out = self.core.step(actions, rows=np.flatnonzero(~self._autoreset))
        else:
            out = self.core.step(actions)
        stepped = ~self._autoreset
        self._autoreset = out.terminated | out.truncated
        infos = {
            "quit_reason": out.quit_reasons(),
            "_quit_reason": stepped,
            "user": self.core.users.copy(),
            "_user": np.ones(self.num_envs, dtype=bool),
        }
        return out.obs, out.reward, out.terminated, out.truncated, infos
