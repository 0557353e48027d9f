"""Discrete CQL (Kumar et al. 2020) as an RLlib algorithm, offline from the logged MDP's parquet.

RLlib's own CQL is continuous-only (its module needs a Box action space), so this is a separate
Algorithm with its own Learner (``cql_learner``) and module (``cql_rl_module``). The training step is
RLlib's MARWIL/BC offline loop itself (``OfflineData.sample`` -> ``LearnerGroup.update``), read
through ``AlgorithmConfig.offline_data`` like LAAC, so the two see the same batches.

Usage::

    config = (
        DiscreteCQLConfig()
        .offline_data(input_="runs/x/episodes")        # written by rayrec.data.logged_mdp
        .training(cql_alpha=1.0, gamma=0.9, lr=5e-4)
    )
    algo = config.build_algo()
    algo.train()
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.algorithms.marwil.marwil import MARWIL
from ray.rllib.connectors.common.add_observations_from_episodes_to_batch import (
    AddObservationsFromEpisodesToBatch,
)
from ray.rllib.connectors.learner.add_next_observations_from_episodes_to_train_batch import (
    AddNextObservationsFromEpisodesToTrainBatch,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rayrec.algorithms.baselines.cql.cql_learner import DiscreteCQLTorchLearner
from rayrec.algorithms.baselines.cql.cql_rl_module import DiscreteCQLTorchRLModule
from rayrec.algorithms.laac.laac import observation_space
from rayrec.algorithms.offline_recommender import OfflineRestoreMixin
from rayrec.algorithms.sequence_encoders import ENCODERS
from rayrec.data import logged_mdp
from rayrec.errors import ConfigError

# Knob -> (check, what the range is), applied at config time so a bad value never reaches a learner.
_RANGES: dict[str, tuple[Any, str]] = {
    "cql_alpha": (lambda v: v >= 0, ">= 0"),
    "gamma": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "tau": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "lr": (lambda v: v > 0, "> 0"),
    "embed_dim": (lambda v: isinstance(v, int) and v >= 1, "an int >= 1"),
    "rating_scale": (lambda v: v > 0, "> 0"),
    "encoder": (lambda v: v in ENCODERS, f"one of {ENCODERS}"),
    "train_batch_size_per_learner": (lambda v: isinstance(v, int) and v >= 1, "an int >= 1"),
}


class DiscreteCQLConfig(AlgorithmConfig):
    """Knobs (``.training(...)``): ``cql_alpha`` weight of the conservative term (0 = double DQN),
    ``gamma``, ``tau`` EMA rate of the target net, ``lr``, ``encoder`` gru | sasrec, ``embed_dim`` d,
    ``train_batch_size_per_learner``. ``history_len`` and ``rating_scale`` come from the episodes.
    Defaults match LAAC's where they mean the same thing (γ 0.9, τ 0.005, batch 256, d 64)."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or DiscreteCQL)
        self._is_online = False  # no EnvRunners: all data comes from the episodes
        self.cql_alpha = 1.0
        self.gamma = 0.9
        self.tau = 0.005
        self.lr = 5e-4
        self.encoder = "gru"
        self.embed_dim = 64
        self.rating_scale = 5.0
        self.train_batch_size_per_learner = 256
        self.dataset_num_iters_per_learner = 1
        # 2-core machines: one small Ray Data mapper (RLlib's default wants 2 whole CPUs).
        self.map_batches_kwargs = {"concurrency": 1, "num_cpus": 0.5}

    def training(
        self,
        *,
        cql_alpha: float = NotProvided,
        tau: float = NotProvided,
        encoder: str = NotProvided,
        embed_dim: int = NotProvided,
        rating_scale: float = NotProvided,
        **kwargs: Any,
    ) -> DiscreteCQLConfig:
        super().training(**kwargs)
        given = {"cql_alpha": cql_alpha, "tau": tau, "encoder": encoder, "embed_dim": embed_dim,
                 "rating_scale": rating_scale}  # fmt: skip
        for key, value in given.items():
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    def offline_data(self, **kwargs: Any) -> DiscreteCQLConfig:
        """RLlib's ``offline_data``; episodes written by ``logged_mdp`` also set the spaces and the
        rating scale (foreign data: ``.environment(observation_space=..., action_space=...)``)."""
        super().offline_data(**kwargs)
        path = kwargs.get("input_", NotProvided)
        if path is not NotProvided and path and logged_mdp.is_local(path):
            info = logged_mdp.read_info(path)
            if info is not None:
                self.rating_scale = info.rating_scale
                if self.observation_space is None:
                    self.environment(
                        observation_space=observation_space(info.n_items, info.history_len),
                        action_space=gym.spaces.Discrete(info.n_items),
                    )
        return self

    def validate(self) -> None:
        for key, (ok, what) in _RANGES.items():
            value = getattr(self, key)
            try:
                good = bool(ok(value))
            except TypeError:
                good = False
            if not good:
                raise ConfigError(f"discrete CQL knob {key}={value!r} is out of range: it must be {what}")
        if not self.is_offline:  # RLlib's default input_ is "sampler", never empty
            raise ConfigError("discrete CQL is offline: set .offline_data(input_='path/to/episodes')")
        if self.observation_space is None or self.action_space is None:
            raise ConfigError(
                "discrete CQL needs the observation and action spaces: episodes written by "
                "rayrec.data.logged_mdp carry them; for other data call "
                ".environment(observation_space=..., action_space=...)"
            )
        if not hasattr(self.action_space, "n"):
            raise ConfigError(f"discrete CQL needs a Discrete action space (items), not {self.action_space}")
        if logged_mdp.is_local(self.input_):
            required = [Columns.OBS, Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS]
            logged_mdp.check_episode_columns(self.input_, required, self.input_read_schema)
            info = logged_mdp.read_info(self.input_)
            if info is not None and self.action_space.n != info.n_items:
                raise ConfigError(
                    f"the action space has {self.action_space.n} items but the episodes' catalog has "
                    f"{info.n_items}: drop .environment(action_space=...) or fix it"
                )
        super().validate()

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=DiscreteCQLTorchRLModule,
            model_config={"encoder": self.encoder, "dim": self.embed_dim, "rating_scale": self.rating_scale},
        )

    def get_default_learner_class(self) -> type:
        return DiscreteCQLTorchLearner

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


class DiscreteCQL(OfflineRestoreMixin, Algorithm):
    @classmethod
    def get_default_config(cls) -> DiscreteCQLConfig:
        return DiscreteCQLConfig()

    def training_step(self) -> None:
        """RLlib's MARWIL/BC offline step, unchanged: sample a batch (an iterator per remote learner),
        update the learner group, aggregate its metrics."""
        return MARWIL.training_step(self)
