"""LAAC (LLM-guided Adversarial Actor Critic) as an RLlib Algorithm: offline, from the logged MDP's parquet.

Usage::

    config = (
        LAACConfig()
        .offline_data(input_="runs/x/episodes")            # written by rayrec.data.logged_mdp
        .training(llm_table="runs/x/pi_llm.npz", beta=4.0, lam=1.0, comparator="llm")
        .learners(num_learners=0)
    )
    algo = config.build_algo()
    algo.train()

The training step is BC/MARWIL's offline loop (``OfflineData.sample`` -> ``LearnerGroup.update``); the
losses live in ``laac_learner``. Entropy: a fixed coefficient ``alpha`` (default 0), not an auto-tuned
target entropy: with a softmax over thousands of items a target entropy is hard to pick and makes runs
less comparable across catalogs, and ATAC-style actors are usually run with α ≈ 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.connectors.common.add_observations_from_episodes_to_batch import (
    AddObservationsFromEpisodesToBatch,
)
from ray.rllib.connectors.learner.add_next_observations_from_episodes_to_train_batch import (
    AddNextObservationsFromEpisodesToTrainBatch,
)
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import (
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    OFFLINE_SAMPLING_TIMER,
    TIMERS,
)

from rayrec.algorithms.laac.laac_learner import COMPARATORS, LAACTorchLearner
from rayrec.algorithms.laac.laac_rl_module import LAACTorchRLModule
from rayrec.algorithms.laac.llm_table import check_fingerprint, load_llm_table
from rayrec.algorithms.sequence_encoders import ENCODERS
from rayrec.data import logged_mdp
from rayrec.errors import ConfigError

UNEXPLORED = ("user", "global")

# Knob -> (check, what the range is), applied at config time so a bad value never reaches a learner.
_RANGES: dict[str, tuple[Any, str]] = {
    "beta": (lambda v: v >= 0, ">= 0"),
    "lam": (lambda v: v >= 0, ">= 0"),
    "gamma": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "tau": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "lr_actor": (lambda v: v > 0, "> 0"),
    "lr_critic": (lambda v: v > 0, "> 0"),
    "lr_bc": (lambda v: v > 0, "> 0"),
    "alpha": (lambda v: v >= 0, ">= 0"),
    "actor_update_interval": (lambda v: isinstance(v, int) and v >= 1, "an int >= 1"),
    "bc_warmstart_steps": (lambda v: isinstance(v, int) and v >= 0, "an int >= 0"),
    "history_len": (lambda v: isinstance(v, int) and v >= 1, "an int >= 1"),
    "K": (lambda v: isinstance(v, int) and v >= 1, "an int >= 1"),
    "llm_stride": (lambda v: isinstance(v, int) and v >= 0, "an int >= 0 (0 = once per user)"),
    "embed_dim": (lambda v: isinstance(v, int) and v >= 1, "an int >= 1"),
    "rating_scale": (lambda v: v > 0, "> 0"),
    "head_frac": (lambda v: 0 < v < 1, "in (0, 1)"),
    "encoder": (lambda v: v in ENCODERS, f"one of {ENCODERS}"),
    "unexplored": (lambda v: v in UNEXPLORED, f"one of {UNEXPLORED}"),
    "comparator": (lambda v: v in COMPARATORS, f"one of {COMPARATORS}"),
}


class LAACConfig(AlgorithmConfig):
    """Defaults follow docs/design.md §8 (γ 0.9, β 4, λ 1, lr_critic 5e-4, lr_actor 5e-5, batch 256, N 10).

    Knobs (``.training(...)``): ``beta`` Bellman weight, ``lam`` anchor weight λ, ``gamma``, ``tau`` EMA
    rate of the target critics, ``lr_critic`` / ``lr_actor`` / ``lr_bc`` (the actor's lr during the BC
    warm start), ``alpha`` fixed entropy coefficient, ``actor_update_interval`` (actor step every m
    learner steps), ``bc_warmstart_steps`` (learner steps of BC before the adversarial actor), ``encoder``
    gru | sasrec, ``embed_dim`` d, ``history_len`` N (taken from the episodes), ``K`` candidates per
    π_LLM row, ``llm_stride`` (0: one π_LLM per user; s: one per s logged steps), ``unexplored`` user |
    global, ``comparator`` llm | data (ATAC) | uniform, ``llm_table`` (.npz, see ``llm_table.py``),
    ``llm_model`` / ``prompt_version`` (expected fingerprint, None = any), ``tail_items`` or
    ``head_frac`` (long-tail set for the logged probability mass).
    """

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or LAAC)
        self.lr = None  # per-optimizer learning rates below
        self._is_online = False  # no EnvRunners: all data comes from the episodes
        self.gamma = 0.9
        self.beta = 4.0
        self.lam = 1.0
        self.tau = 0.005
        self.lr_critic = 5e-4
        self.lr_actor = 5e-5
        self.lr_bc = 1e-3
        self.alpha = 0.0
        self.actor_update_interval = 1
        self.bc_warmstart_steps = 500
        self.encoder = "gru"
        self.embed_dim = 64
        self.history_len = 10
        self.rating_scale = 5.0
        self.K = 20
        self.llm_stride = 0
        self.unexplored = "user"
        self.comparator = "llm"
        self.llm_table: str | None = None
        self.llm_model: str | None = None  # expected fingerprint["model"]; None accepts any
        self.prompt_version: str | None = None  # expected fingerprint["prompt_version"]; None accepts any
        self.tail_items: list[int] | None = None  # long-tail item ids for logging; None: derive from data
        self.head_frac = 0.2
        self.user_id_column = logged_mdp.USER_ID
        self.train_batch_size_per_learner = 256
        self.dataset_num_iters_per_learner = 1
        # 2-core machines: one small Ray Data mapper (RLlib's default wants 2 whole CPUs).
        self.map_batches_kwargs = {"concurrency": 1, "num_cpus": 0.5}
        # The actor is skipped on some steps: DDP must tolerate parameters without gradients.
        self.torch_ddp_kwargs = {"find_unused_parameters": True}

    def training(
        self,
        *,
        beta: float = NotProvided,
        lam: float = NotProvided,
        tau: float = NotProvided,
        lr_critic: float = NotProvided,
        lr_actor: float = NotProvided,
        lr_bc: float = NotProvided,
        alpha: float = NotProvided,
        actor_update_interval: int = NotProvided,
        bc_warmstart_steps: int = NotProvided,
        encoder: str = NotProvided,
        embed_dim: int = NotProvided,
        history_len: int = NotProvided,
        rating_scale: float = NotProvided,
        K: int = NotProvided,  # noqa: N803 (the paper's name)
        llm_stride: int = NotProvided,
        unexplored: str = NotProvided,
        comparator: str = NotProvided,
        llm_table: str | Path = NotProvided,
        llm_model: str | None = NotProvided,
        prompt_version: str | None = NotProvided,
        tail_items: Sequence[int] | None = NotProvided,
        head_frac: float = NotProvided,
        **kwargs: Any,
    ) -> LAACConfig:
        super().training(**kwargs)
        given = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        for key, value in given.items():
            if value is not NotProvided:
                if key == "llm_table" and value is not None:
                    value = str(value)
                if key == "tail_items" and value is not None:
                    value = [int(i) for i in value]
                setattr(self, key, value)
        return self

    def offline_data(self, **kwargs: Any) -> LAACConfig:
        """RLlib's ``offline_data``; for episodes written by ``logged_mdp`` it also sets the spaces,
        ``history_len`` and ``rating_scale`` from the files' metadata (foreign data: set them yourself
        with ``.environment(observation_space=..., action_space=...)``)."""
        super().offline_data(**kwargs)
        path = kwargs.get("input_", NotProvided)
        if path is not NotProvided and path and logged_mdp.is_local(path):
            info = logged_mdp.read_info(path)
            if info is not None:
                self.history_len = info.history_len
                self.rating_scale = info.rating_scale
                if self.observation_space is None:
                    self.environment(
                        observation_space=observation_space(info.n_items, info.history_len),
                        action_space=gym.spaces.Discrete(info.n_items),
                    )
        return self

    def check_knobs(self) -> None:
        """The knobs' ranges only (no data needed), so a caller can fail before any expensive work."""
        for key, (ok, what) in _RANGES.items():
            value = getattr(self, key)
            try:
                good = bool(ok(value))
            except TypeError:
                good = False
            if not good:
                raise ConfigError(f"LAAC knob {key}={value!r} is out of range: it must be {what}")

    def validate(self) -> None:
        self.check_knobs()
        if not self.llm_table:
            raise ConfigError("LAAC needs a π_LLM table: set .training(llm_table='path/to/pi_llm.npz')")
        if not self.is_offline:  # RLlib's default input_ is "sampler", never empty
            raise ConfigError("LAAC is offline: set .offline_data(input_='path/to/episodes')")
        if self.observation_space is None or self.action_space is None:
            raise ConfigError(
                "LAAC needs the observation and action spaces: episodes written by rayrec.data.logged_mdp "
                "carry them; for other data call .environment(observation_space=..., action_space=...)"
            )
        if self.observation_space.shape != (2 * self.history_len,):
            raise ConfigError(
                f"history_len={self.history_len} needs observations of shape ({2 * self.history_len},), "
                f"the data has {self.observation_space.shape}: set history_len to match the episodes"
            )
        if logged_mdp.is_local(self.input_):
            self._check_data()
        super().validate()

    def _check_data(self) -> None:
        """Columns of every episodes file, and the π_LLM table against the episodes and this config."""
        required = [Columns.OBS, Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS]
        required.append(self.user_id_column)
        if self.llm_stride > 0:
            required.append(logged_mdp.STEP)
        logged_mdp.check_episode_columns(self.input_, required, self.input_read_schema)
        info = logged_mdp.read_info(self.input_)
        table = load_llm_table(self.llm_table)
        expected = {
            "dataset": info.dataset if info else None,
            "K": self.K,
            "stride": self.llm_stride,
            "model": self.llm_model,
            "prompt_version": self.prompt_version,
        }
        check_fingerprint(table, expected, self.llm_table)
        if table.k != self.K:
            raise ConfigError(f"π_LLM table {self.llm_table} has {table.k} candidates per row, K={self.K}")
        if info is not None:
            if getattr(self.action_space, "n", None) != info.n_items:
                raise ConfigError(
                    f"the action space has {getattr(self.action_space, 'n', None)} items but the episodes' "
                    f"catalog has {info.n_items}: drop .environment(action_space=...) or fix it"
                )
            table.check(info.n_users, info.n_items, where=self.llm_table)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=LAACTorchRLModule,
            model_config={
                "encoder": self.encoder,
                "dim": self.embed_dim,
                "history_len": self.history_len,
                "rating_scale": self.rating_scale,
            },
        )

    def get_default_learner_class(self) -> type:
        return LAACTorchLearner

    def build_learner_connector(self, input_observation_space, input_action_space, device=None):  # noqa: ANN001
        pipeline = super().build_learner_connector(
            input_observation_space=input_observation_space,
            input_action_space=input_action_space,
            device=device,
        )
        pipeline.insert_after(
            AddObservationsFromEpisodesToBatch, AddNextObservationsFromEpisodesToTrainBatch()
        )
        return pipeline


def observation_space(n_items: int, history_len: int) -> gym.spaces.Box:
    """The logged MDP's state: N item ids in [0, n_items] (n_items = pad), then N ratings."""
    low = np.zeros(2 * history_len, dtype=np.float32)
    high = np.concatenate(
        [np.full(history_len, n_items, np.float32), np.full(history_len, np.inf, np.float32)]
    )
    low[history_len:] = -np.inf
    return gym.spaces.Box(low, high, dtype=np.float32)


class LAAC(Algorithm):
    @classmethod
    def get_default_config(cls) -> LAACConfig:
        return LAACConfig()

    def restore_from_path(self, path: str | Path, *args: Any, **kwargs: Any) -> None:
        # Algorithm.restore_from_path syncs weights into EnvRunners, which offline LAAC does not have
        # (RLlib 2.60 then fails on None); the learner group's state is all there is to restore.
        if self.env_runner_group is None:
            super(Algorithm, self).restore_from_path(path, *args, **kwargs)
        else:
            super().restore_from_path(path, *args, **kwargs)

    def training_step(self) -> None:
        """BC/MARWIL's offline step: sample a batch (an iterator per learner when remote), update."""
        cfg = self.config
        with self.metrics.log_time((TIMERS, OFFLINE_SAMPLING_TIMER)):
            return_iterator = cfg.num_learners > 0 or cfg.dataset_num_iters_per_learner != 1
            batch_or_iterator = self.offline_data.sample(
                num_samples=cfg.train_batch_size_per_learner,
                num_shards=cfg.num_learners,
                return_iterator=return_iterator,
            )
            self.metrics.log_value(
                NUM_ENV_STEPS_SAMPLED_LIFETIME,
                cfg.train_batch_size_per_learner * max(1, cfg.num_learners),
                reduce="lifetime_sum",
            )
            if return_iterator:
                training_data = TrainingData(data_iterators=batch_or_iterator)
            else:
                training_data = TrainingData(batch=batch_or_iterator)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(
                training_data=training_data,
                minibatch_size=cfg.train_batch_size_per_learner,
                num_iters=cfg.dataset_num_iters_per_learner,
                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(NUM_ENV_STEPS_SAMPLED_LIFETIME)},
                **self.offline_data.iter_batches_kwargs,
            )
            self.metrics.aggregate(results, key=LEARNER_RESULTS)

    def inference_module(self) -> LAACTorchRLModule:
        """An actor-only copy of the trained module (no critics), with the learner's current weights.

        Offline LAAC has no EnvRunner whose module ``get_module`` could return, so the weights come from
        the (local or remote) learner; this is also what a server would load.
        """
        path = f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{DEFAULT_MODULE_ID}"
        state = self.learner_group.get_state(components=path)[COMPONENT_LEARNER][COMPONENT_RL_MODULE]
        spec = self.config.get_default_rl_module_spec()
        module = LAACTorchRLModule(
            observation_space=self.config.observation_space,
            action_space=self.config.action_space,
            inference_only=True,
            model_config=spec.model_config,
        )
        module.set_state(state[DEFAULT_MODULE_ID])
        return module.eval()

    def actor_logits(self, obs: np.ndarray) -> np.ndarray:
        """(B, |I|) actor logits for states laid out like the ``obs`` column (no critics involved)."""
        module = self.inference_module()
        out = module.forward_inference({Columns.OBS: torch.as_tensor(obs, dtype=torch.float32)})
        return out[Columns.ACTION_DIST_INPUTS].detach().cpu().numpy()

    def recommend(self, obs: np.ndarray, k: int = 10, exclude: np.ndarray | None = None) -> np.ndarray:
        """(B, k) item ids ranked by the actor; ``exclude`` (B, |I|) bool masks items (e.g. seen ones)."""
        return top_k(self.actor_logits(obs), k, exclude)


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Highest-scoring k items per row (ties broken by lower id), excluded items never returned."""
    s = scores.astype(np.float64, copy=True)
    if exclude is not None:
        s[exclude] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]
