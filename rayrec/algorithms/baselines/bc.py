"""Behaviour cloning: RLlib's own BC (its MARWIL learner with β = 0 and its offline loop) with a custom
RLModule whose network is exactly LAAC's actor (``laac_rl_module._Net``: the shared GRU/SASRec encoder
over the (item, rating) history plus a linear head over the catalog).

Why RLlib's BC and LAAC's actor network: the BC row of the study is the plain "imitate the log"
policy, and ``bench/laac.py`` compares LAAC's learner throughput with it, so the ratio measures
LAAC's extra work (two critics, their targets and losses) and not a different network or data path.

``OfflineBC`` is RLlib's ``BC`` with one fix only: ``Algorithm.from_checkpoint`` works without
EnvRunners (``OfflineRestoreMixin``). Recommend with
``OfflineRLRecommender(bc_config(...), iterations=...)`` or ``OfflineRLRecommender.from_algorithm``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.rllib.algorithms.bc import BC, BCConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule

from rayrec.algorithms.laac.laac_rl_module import _Net as ActorNet
from rayrec.algorithms.offline_recommender import OfflineRestoreMixin, use_episodes
from rayrec.algorithms.sequence_encoders import ENCODERS
from rayrec.data import logged_mdp
from rayrec.errors import ConfigError


class SequenceBCTorchRLModule(TorchRLModule):
    """model_config keys: n_items (default: the action space's n), history_len (default: obs width / 2),
    encoder ("gru" | "sasrec"), dim (64), rating_scale (5.0). Same layout as LAAC's ``actor``."""

    def setup(self) -> None:
        cfg = self.model_config or {}
        self.n_items = int(cfg.get("n_items") or self.action_space.n)
        self.history_len = int(cfg.get("history_len") or self.observation_space.shape[0] // 2)
        self.actor = ActorNet(
            cfg.get("encoder", "gru"),
            self.n_items,
            self.history_len,
            int(cfg.get("dim", 64)),
            float(cfg.get("rating_scale", 5.0)),
        )

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.actor(batch[Columns.OBS])}  # (B, |I|)


class OfflineBC(OfflineRestoreMixin, BC):
    """RLlib's BC, restorable from a checkpoint without EnvRunners."""


def bc_config(
    episodes: str | Path | None = None,
    *,
    encoder: str = "gru",
    embed_dim: int = 64,
    lr: float = 1e-3,
    train_batch_size_per_learner: int = 256,
    **training: Any,
) -> BCConfig:
    """RLlib's ``BCConfig`` over the logged MDP with LAAC's actor network; ``episodes`` may be left out
    when ``OfflineRLRecommender.fit`` writes them. ``training`` goes to ``BCConfig.training``."""
    if encoder not in ENCODERS:
        raise ConfigError(f"BC encoder must be one of {ENCODERS}, not {encoder!r}")
    if embed_dim < 1 or lr <= 0 or train_batch_size_per_learner < 1:
        raise ConfigError(
            f"BC needs embed_dim >= 1, lr > 0 and a batch >= 1 (got {embed_dim}, {lr}, "
            f"{train_batch_size_per_learner})"
        )
    rating_scale = 5.0
    config = BCConfig(algo_class=OfflineBC)
    if episodes is not None:
        use_episodes(config, episodes)
        info = logged_mdp.read_info(episodes)
        rating_scale = info.rating_scale if info is not None else rating_scale
    return (
        config.training(lr=lr, train_batch_size_per_learner=train_batch_size_per_learner, **training)
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=SequenceBCTorchRLModule,
                model_config={"encoder": encoder, "dim": embed_dim, "rating_scale": rating_scale},
            )
        )
        # one iteration = one minibatch, as LAAC; 2-core machines: one small Ray Data mapper
        .offline_data(dataset_num_iters_per_learner=1, map_batches_kwargs={"concurrency": 1, "num_cpus": 0.5})
    )
