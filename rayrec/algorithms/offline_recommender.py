"""A ``Recommender`` from any offline RLlib algorithm trained on the logged MDP (LAAC, BC, discrete CQL).

Every offline RL recommender here ranks the catalog by what its RLModule's inference pass returns as
``ACTION_DIST_INPUTS`` (LAAC's actor logits, BC's logits, CQL's Q values) at the user's *final* logged
state, laid out exactly like the episodes' ``obs`` column (``rayrec.data.logged_mdp.user_states``).
So one wrapper serves them all and there is one state builder: after ``fit`` (or ``from_algorithm``)
the state is the end of the training sequence (what a validation target follows); ``observe(valid)``
appends the validation interactions, which is what the test target follows.

Offline algorithms have no EnvRunner whose module ``Algorithm.get_module`` could return, so the
weights come from the (local or remote) learner: ``inference_module`` builds the module's
inference-only version (no critics, no target nets) from the algorithm's own RLModule spec and loads
the learner's weights into it, which is also what a server would load.

``OfflineRestoreMixin`` makes ``Algorithm.from_checkpoint`` work for such algorithms: RLlib 2.60's
``Algorithm.restore_from_path`` syncs weights into an EnvRunner group that offline runs do not have.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.laac.laac import observation_space
from rayrec.data import Dataset, logged_mdp
from rayrec.errors import ConfigError


class OfflineRestoreMixin:
    """Put first in an offline Algorithm's bases so ``Algorithm.from_checkpoint`` restores it."""

    def restore_from_path(self, path: str | Path, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "env_runner_group", None) is None:
            # Skip Algorithm's override (it syncs EnvRunners); Checkpointable restores every component.
            super(Algorithm, self).restore_from_path(path, *args, **kwargs)  # type: ignore[misc]
        else:
            super().restore_from_path(path, *args, **kwargs)  # type: ignore[misc]


def use_episodes(config: AlgorithmConfig, path: str | Path) -> AlgorithmConfig:
    """``config.offline_data(input_=path)``, plus the spaces from the episodes' metadata when unset
    (episodes written by ``rayrec.data.logged_mdp``; foreign data needs ``.environment(...)``)."""
    config.offline_data(input_=str(path))
    if config.observation_space is None or config.action_space is None:
        info = logged_mdp.read_info(path)
        if info is None:
            raise ConfigError(
                f"{path}: no rayrec.logged_mdp metadata, so the spaces are unknown; call "
                ".environment(observation_space=..., action_space=...) on the config"
            )
        config.environment(
            observation_space=observation_space(info.n_items, info.history_len),
            action_space=gym.spaces.Discrete(info.n_items),
        )
    return config


def inference_module(algo: Algorithm) -> RLModule:
    """An inference-only copy of ``algo``'s default module with the learner's current weights."""
    path = f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{DEFAULT_MODULE_ID}"
    state = algo.learner_group.get_state(components=path)[COMPONENT_LEARNER][COMPONENT_RL_MODULE]
    module = algo.config.get_rl_module_spec(inference_only=True).build()
    module.set_state(state[DEFAULT_MODULE_ID])
    return module.eval()


@torch.no_grad()
def inference_logits(module: RLModule, obs: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """(B, |I|) float32 ``ACTION_DIST_INPUTS`` of ``module`` for states laid out like ``obs``."""
    out = []
    for lo in range(0, len(obs), batch_size):
        x = torch.as_tensor(obs[lo : lo + batch_size], dtype=torch.float32)
        out.append(module.forward_inference({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS].cpu().numpy())
    if not out:
        return np.zeros((0, module.action_space.n), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


class OfflineRLRecommender(Recommender):
    """Scores = the trained module's inference logits at each user's final state.

    Two ways in: ``fit(train)`` writes ``train``'s logged MDP, trains ``config`` for ``iterations``
    ``Algorithm.train()`` calls and keeps the module; ``from_algorithm(algo, train)`` wraps an
    algorithm already trained (or restored from a checkpoint). ``config`` must carry everything else
    the algorithm needs (e.g. LAAC's π_LLM table); its ``input_`` and spaces are replaced by the
    written episodes'. With ``checkpoint``, ``fit`` saves the trained algorithm there
    (``Algorithm.from_checkpoint`` + ``from_algorithm`` give the same scores back). An offline
    algorithm's checkpoint names its episodes (RLlib re-opens them on restore), so they are written
    to ``episodes_dir`` and kept: by default ``<checkpoint>-episodes`` beside a checkpoint, else a
    temporary directory removed after ``fit``.
    """

    def __init__(
        self,
        config: AlgorithmConfig | None = None,
        *,
        iterations: int = 100,
        history_len: int = 10,
        reward: str = "binary",
        name: str = "offline_rl",
        checkpoint: str | Path | None = None,
        episodes_dir: str | Path | None = None,
    ) -> None:
        if iterations < 1:
            raise ConfigError(f"iterations must be >= 1, not {iterations}")
        self.config = config
        self.iterations = iterations
        self.history_len = history_len
        self.reward = reward
        self.name = name
        self.checkpoint = checkpoint
        if episodes_dir is None and checkpoint is not None:
            episodes_dir = Path(checkpoint).with_name(Path(checkpoint).name + "-episodes")
        self.episodes_dir = episodes_dir
        self.module: RLModule | None = None
        self._history: Dataset | None = None
        self._states: np.ndarray | None = None
        self.results: list[dict[str, Any]] = []  # the train() results of fit

    @classmethod
    def from_algorithm(
        cls, algo: Algorithm, train: Dataset, name: str = "offline_rl"
    ) -> OfflineRLRecommender:
        """Wrap a trained ``algo`` whose episodes came from ``train`` (states from ``train``'s end)."""
        width = algo.config.observation_space.shape[0]
        rec = cls(None, history_len=width // 2, name=name)
        return rec._attach(algo, train)

    def _attach(self, algo: Algorithm, train: Dataset) -> OfflineRLRecommender:
        self.module = inference_module(algo)
        n = getattr(self.module, "n_items", None) or self.module.action_space.n
        if n != train.n_items:
            raise ConfigError(f"the module scores {n} items but {train.name} has {train.n_items}")
        self._history = train
        self._states = logged_mdp.user_states(train, self.history_len)
        return self

    def fit(self, train: Dataset) -> OfflineRLRecommender:
        if self.config is None:
            raise ConfigError("this recommender wraps a trained algorithm; build it with a config to fit")
        with tempfile.TemporaryDirectory(prefix=f"rayrec-{self.name}-") as tmp:
            eps = Path(self.episodes_dir or Path(tmp) / "episodes").absolute()
            logged_mdp.write_logged_mdp(train, eps, self.history_len, self.reward)
            config = self.config.copy(copy_frozen=False)
            config.observation_space = config.action_space = None  # from these episodes
            algo = use_episodes(config, eps).build_algo()
            try:
                self.results = [algo.train() for _ in range(self.iterations)]
                self._attach(algo, train)
                if self.checkpoint is not None:
                    algo.save_to_path(Path(self.checkpoint).absolute())
            finally:
                algo.stop()
        return self

    def observe(self, part: Dataset) -> OfflineRLRecommender:
        """Append ``part``'s interactions to the histories (e.g. validation before test)."""
        if self._history is None:
            raise RuntimeError("call fit() before observe()")
        both = pd.concat([self._history.interactions, part.interactions], ignore_index=True)
        self._history = self._history.with_interactions(both)
        self._states = logged_mdp.user_states(self._history, self.history_len)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.module is None or self._states is None:
            raise RuntimeError("call fit() before score()")
        return inference_logits(self.module, self._states[np.asarray(users, dtype=np.int64)])
