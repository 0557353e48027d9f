"""LAAC's networks: an actor π(·|s) over the catalog and twin critics f_1, f_2(s, ·) ∈ R^|I| with EMA targets.

Every network has its own sequence encoder (GRU or SASRec, d=64) over the (item, rating) history, so
the adversarial critic objective never pulls on the actor's features and vice versa. A critic head
outputs one value per catalog item, so f(s, π) = Σ_a π(a|s) f(s, a) is an exact sum, not a sample.

``forward_inference`` / ``forward_exploration`` return only the actor's logits (what recommendations
rank by); EnvRunners and serving build the module with ``inference_only=True`` and get no critics.
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
Q1, Q2 = "q1", "q2"  # f_k(s, ·)
Q1_NEXT, Q2_NEXT = "q1_next", "q2_next"  # f_k(s', ·), with gradient (residual Bellman term)
Q1_TARGET_NEXT, Q2_TARGET_NEXT = "q1_target_next", "q2_target_next"  # f̄_k(s', ·), no gradient
LOGITS_NEXT = "logits_next"  # actor logits at s', no gradient


class _Net(nn.Module):
    """Encoder + linear head over the catalog: (B, 2N) state -> (B, |I|)."""

    def __init__(self, kind: str, n_items: int, history_len: int, dim: int, rating_scale: float) -> None:
        super().__init__()
        self.encoder = make_encoder(kind, n_items, history_len, dim, rating_scale)
        self.head = nn.Linear(dim, n_items)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(obs))


class LAACTorchRLModule(TorchRLModule, TargetNetworkAPI, InferenceOnlyAPI):
    """model_config keys: n_items (default: the action space's n), history_len (default: obs width / 2),
    encoder ("gru" | "sasrec"), dim (64), rating_scale (5.0)."""

    def setup(self) -> None:
        cfg = self.model_config or {}
        self.n_items = int(cfg.get("n_items") or self.action_space.n)
        self.history_len = int(cfg.get("history_len") or self.observation_space.shape[0] // 2)
        kind = cfg.get("encoder", "gru")
        dim = int(cfg.get("dim", 64))
        scale = float(cfg.get("rating_scale", 5.0))
        self.actor = _Net(kind, self.n_items, self.history_len, dim, scale)
        if not self.inference_only:
            self.critic = _Net(kind, self.n_items, self.history_len, dim, scale)
            self.critic_twin = _Net(kind, self.n_items, self.history_len, dim, scale)
            self.make_target_networks()

    # TargetNetworkAPI: built in setup (not by the Learner) so every non-inference copy of the module,
    # including a restored one, has the same state layout.
    def make_target_networks(self) -> None:
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_twin_target = copy.deepcopy(self.critic_twin).requires_grad_(False)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.critic, self.critic_target), (self.critic_twin, self.critic_twin_target)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        with torch.no_grad():
            obs = batch[Columns.OBS]
            return {Q1: self.critic_target(obs), Q2: self.critic_twin_target(obs)}

    def get_non_inference_attributes(self) -> list[str]:
        return ["critic", "critic_twin", "critic_target", "critic_twin_target"]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.actor(batch[Columns.OBS])}  # (B, |I|)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs, nxt = batch[Columns.OBS], batch[Columns.NEXT_OBS]  # (B, 2N) each
        b = obs.shape[0]
        both = torch.cat([obs, nxt])  # (2B, 2N): one encoder pass for s and s'
        q1 = self.critic(both)
        q2 = self.critic_twin(both)
        logits = self.actor(obs)
        with torch.no_grad():
            logits_next = self.actor(nxt)
            q1_t = self.critic_target(nxt)
            q2_t = self.critic_twin_target(nxt)
        return {
            Columns.ACTION_DIST_INPUTS: logits,
            LOGITS_NEXT: logits_next,
            Q1: q1[:b],
            Q2: q2[:b],
            Q1_NEXT: q1[b:],
            Q2_NEXT: q2[b:],
            Q1_TARGET_NEXT: q1_t,
            Q2_TARGET_NEXT: q2_t,
        }
