"""Discrete CQL's network: one sequence encoder, twin Q heads over the catalog, an EMA target copy.

Q_k(s, ·) ∈ R^|I| for k ∈ {1, 2} share the encoder (GRU or SASRec over the (item, rating) history, the
same ``make_encoder`` LAAC uses), so CQL costs one encoder pass per state, like DQN. The inference pass
returns the mean of the two heads as ``ACTION_DIST_INPUTS``: recommendations rank by Q (argmax is the
greedy policy, softmax of Q a Boltzmann one), and the target network is left out of inference-only
copies.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rayrec.algorithms.sequence_encoders import make_encoder

# Keys of forward_train's output (all (B, |I|) float).
Q1, Q2 = "q1", "q2"  # Q_k(s, ·), with gradient
Q1_NEXT, Q2_NEXT = "q1_next", "q2_next"  # Q_k(s', ·) of the online net, no gradient (action selection)
Q1_TARGET_NEXT, Q2_TARGET_NEXT = "q1_target_next", "q2_target_next"  # Q̄_k(s', ·), no gradient


class TwinQNet(nn.Module):
    """(B, 2N) state -> (Q_1, Q_2), each (B, |I|), from one encoder."""

    def __init__(self, kind: str, n_items: int, history_len: int, dim: int, rating_scale: float) -> None:
        super().__init__()
        self.n_items = n_items
        self.encoder = make_encoder(kind, n_items, history_len, dim, rating_scale)
        self.heads = nn.Linear(dim, 2 * n_items)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.heads(self.encoder(obs))  # (B, 2I)
        return q[:, : self.n_items], q[:, self.n_items :]


class DiscreteCQLTorchRLModule(TorchRLModule, TargetNetworkAPI, InferenceOnlyAPI):
    """model_config keys: n_items (default: the action space's n), history_len (default: obs width / 2),
    encoder ("gru" | "sasrec"), dim (64), rating_scale (5.0)."""

    def setup(self) -> None:
        cfg = self.model_config or {}
        self.n_items = int(cfg.get("n_items") or self.action_space.n)
        self.history_len = int(cfg.get("history_len") or self.observation_space.shape[0] // 2)
        self.q = TwinQNet(
            cfg.get("encoder", "gru"),
            self.n_items,
            self.history_len,
            int(cfg.get("dim", 64)),
            float(cfg.get("rating_scale", 5.0)),
        )
        if not self.inference_only:
            self.make_target_networks()

    # TargetNetworkAPI: built in setup, so a restored module has the same state layout.
    def make_target_networks(self) -> None:
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.q, self.q_target)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        with torch.no_grad():
            q1, q2 = self.q_target(batch[Columns.OBS])
        return {Q1: q1, Q2: q2}

    def get_non_inference_attributes(self) -> list[str]:
        return ["q_target"]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        q1, q2 = self.q(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: 0.5 * (q1 + q2)}  # (B, |I|)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs, nxt = batch[Columns.OBS], batch[Columns.NEXT_OBS]  # (B, 2N) each
        q1, q2 = self.q(obs)
        with torch.no_grad():
            q1_next, q2_next = self.q(nxt)
            q1_t, q2_t = self.q_target(nxt)
        return {
            Columns.ACTION_DIST_INPUTS: 0.5 * (q1 + q2),
            Q1: q1,
            Q2: q2,
            Q1_NEXT: q1_next,
            Q2_NEXT: q2_next,
            Q1_TARGET_NEXT: q1_t,
            Q2_TARGET_NEXT: q2_t,
        }
