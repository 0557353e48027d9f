"""LERLTorchRLModule: PPO's low-level item policy with the planner's category mask as a logit bias.

State: an (item, reward) history encoder (Transformer or GRU) over the observation's last H items,
joined with the step, the session's per-category counts and mean rewards, and the current category
mask (so the policy knows which subspace it acts in). Policy: a categorical over the whole catalog,
logits = (query(state) · item embeddings) + item bias, then the mask as a bias: items with none of
their categories allowed get −κ (``mask="soft"``) or −∞ (``"hard"``; RLlib's ``FLOAT_MIN``, so
probabilities are exactly 0 and log-probabilities stay finite). An item is allowed when *any* of its
categories is allowed; an all-ones mask (no planner) allows every item, including uncategorised ones.

The item embedding table is shared by the history encoder and the output scorer; it can start from an
MF fitted on the logged train split (``item_init``, see ``lerl.mf_item_embeddings``), never from the
simulator's response model. Value head on the same state (left out on inference-only EnvRunners).

Slates (``slate_size = k > 1``, MultiDiscrete actions): a Plackett–Luce distribution over the same
masked logits: exploration samples k distinct items in sequence (Gumbel top-k), inference takes the
top-k, and the PPO log-probability is the exact PL log-likelihood of the ordered slate.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.distribution import Distribution
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical, TorchDeterministic
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN
from torch import nn

from rayrec.errors import ConfigError

ENCODERS = ("transformer", "gru")
MASKS = ("soft", "hard")


def item_mask_bias(
    category_mask: torch.Tensor, item_categories: torch.Tensor, mask: str, kappa: float
) -> torch.Tensor:
    """(B, C) category mask -> (B, n_items) additive logit bias: 0 for allowed items, −κ or FLOAT_MIN."""
    m = category_mask.float()
    allowed = (m @ item_categories.T) > 0  # (B, n_items): any of the item's categories allowed
    allowed = allowed | (m > 0).all(dim=-1, keepdim=True)  # no restriction at all
    if mask == "hard":
        return torch.where(allowed, 0.0, FLOAT_MIN)
    return torch.where(allowed, 0.0, -float(kappa))


class PlackettLuce(Distribution):
    """Ordered slates of k distinct items drawn by successive softmax over (masked) item logits."""

    k = 2

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits  # (B, n_items)

    @classmethod
    def from_logits(cls, logits: torch.Tensor, **kwargs: Any) -> PlackettLuce:
        return cls(logits)

    @staticmethod
    def required_input_dim(space: gym.Space, **kwargs: Any) -> int:
        return int(space.nvec[0])

    def logp(self, value: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Σ_j [logit(a_j) − logsumexp(logits without a_1..a_{j−1})] for each ordered slate (B, k)."""
        value = value.long()
        logits = self.logits
        out = torch.zeros(logits.shape[0], device=logits.device)
        taken = torch.zeros_like(logits, dtype=torch.bool)
        for j in range(value.shape[-1]):
            a = value[:, j : j + 1]
            masked = logits.masked_fill(taken, FLOAT_MIN)
            out = out + masked.gather(1, a).squeeze(1) - torch.logsumexp(masked, dim=-1)
            taken = taken.scatter(1, a, True)
        return out

    def sample(self, *, sample_shape: tuple = (), **kwargs: Any) -> torch.Tensor:
        u = torch.rand_like(self.logits).clamp_(1e-10, 1.0 - 1e-7)
        gumbel = self.logits - torch.log(-torch.log(u))
        return torch.topk(gumbel, self.k, dim=-1).indices

    def rsample(self, *, sample_shape: tuple = (), **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError("Plackett-Luce slates are discrete; there is no reparameterised sample")

    def entropy(self) -> torch.Tensor:
        """The first position's categorical entropy (PL's exact entropy has no closed form)."""
        return TorchCategorical(logits=self.logits).entropy()

    def kl(self, other: Distribution) -> torch.Tensor:
        """KL of the first position's categoricals (what PPO's KL term and metrics need)."""
        return TorchCategorical(logits=self.logits).kl(TorchCategorical(logits=other.logits))

    def to_deterministic(self) -> TorchDeterministic:
        return TorchDeterministic(loc=torch.topk(self.logits, self.k, dim=-1).indices)


_PL_CLASSES: dict[int, type] = {}


def plackett_luce(k: int) -> type:
    """The PL distribution class for slates of ``k`` (RLlib builds distributions from classes)."""
    if k not in _PL_CLASSES:
        _PL_CLASSES[k] = type(f"PlackettLuce{k}", (PlackettLuce,), {"k": k, "__module__": __name__})
        globals()[f"PlackettLuce{k}"] = _PL_CLASSES[k]
    return _PL_CLASSES[k]


class HistoryEncoder(nn.Module):
    """(items (B, H), rewards (B, H)) -> (B, d): the encoding at the most recent position."""

    def __init__(self, kind: str, items: nn.Embedding, history_len: int, dim: int, pad_id: int) -> None:
        super().__init__()
        if kind not in ENCODERS:
            raise ConfigError(f"encoder must be one of {ENCODERS}, not {kind!r}")
        self.kind, self.items, self.pad_id = kind, items, pad_id
        self.reward = nn.Linear(1, dim)
        if kind == "gru":
            self.rnn = nn.GRU(dim, dim, batch_first=True)
        else:
            self.pos = nn.Embedding(history_len, dim)
            layer = nn.TransformerEncoderLayer(
                dim, 2, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
            )
            self.blocks = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)

    def forward(self, items: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        x = self.items(items) + self.reward(rewards.unsqueeze(-1))  # (B, H, d)
        if self.kind == "gru":
            out, _ = self.rnn(x)
            return out[:, -1]
        x = x + self.pos.weight.unsqueeze(0)
        pad = items == self.pad_id
        pad[:, -1] = False  # a fresh session (all pads) still attends to one slot
        return self.norm(self.blocks(x, src_key_padding_mask=pad)[:, -1])


class LERLTorchRLModule(TorchRLModule, ValueFunctionAPI, InferenceOnlyAPI):
    """model_config: item_categories (n_items, C) 0/1, history_len, max_turn, encoder, embed_dim,
    hidden_dim, mask, kappa, slate_size, item_init (optional (n_items, embed_dim) array)."""

    def setup(self) -> None:
        cfg = self.model_config
        cats = np.asarray(cfg["item_categories"], dtype=np.float32)
        self.n_items, self.n_categories = cats.shape
        self.mask_kind = cfg.get("mask", "soft")
        self.kappa = float(cfg.get("kappa", 5.0))
        self.slate_size = int(cfg.get("slate_size", 1))
        self.max_turn = float(cfg.get("max_turn", 30))
        if self.mask_kind not in MASKS:
            raise ConfigError(f"mask must be one of {MASKS}, not {self.mask_kind!r}")
        d, hid = int(cfg.get("embed_dim", 32)), int(cfg.get("hidden_dim", 128))
        self.register_buffer("item_categories", torch.from_numpy(cats), persistent=False)
        self.items = nn.Embedding(self.n_items + 1, d, padding_idx=self.n_items)
        init = cfg.get("item_init")
        if init is not None:
            init = torch.as_tensor(np.asarray(init, dtype=np.float32))
            if init.shape != (self.n_items, d):
                raise ConfigError(f"item_init must be ({self.n_items}, {d}), got {tuple(init.shape)}")
            with torch.no_grad():
                self.items.weight[: self.n_items] = init
        self.encoder = HistoryEncoder(
            cfg.get("encoder", "transformer"), self.items, int(cfg["history_len"]), d, self.n_items
        )
        feat = d + 3 * self.n_categories + 1
        self.trunk = nn.Sequential(nn.Linear(feat, hid), nn.ReLU(), nn.Linear(hid, hid), nn.ReLU())
        self.query = nn.Linear(hid, d)
        self.item_bias = nn.Parameter(torch.zeros(self.n_items))
        if not self.inference_only:
            self.vf = nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, 1))

    # --- RLlib hooks ------------------------------------------------------------------------------

    def get_non_inference_attributes(self) -> list[str]:
        return ["vf"]

    def _state(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        items = obs["history_items"].long()
        h = self.encoder(items, obs["history_rewards"].float())
        b = items.shape[0]
        zeros = torch.zeros(b, self.n_categories, device=items.device)
        shown = obs.get("category_shown", zeros).float() / self.max_turn
        reward = obs.get("category_reward", zeros).float()
        step = obs["step"].float().reshape(b, 1) / self.max_turn
        x = torch.cat([h, obs["category_mask"].float(), shown, reward, step], dim=-1)
        return self.trunk(x)

    def logits(self, obs: dict[str, torch.Tensor], state: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_items) masked item logits."""
        state = self._state(obs) if state is None else state
        scores = self.query(state) @ self.items.weight[: self.n_items].T + self.item_bias
        return scores + item_mask_bias(obs["category_mask"], self.item_categories, self.mask_kind, self.kappa)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.logits(batch[Columns.OBS])}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        state = self._state(batch[Columns.OBS])
        return {
            Columns.ACTION_DIST_INPUTS: self.logits(batch[Columns.OBS], state),
            Columns.EMBEDDINGS: state,
        }

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self._state(batch[Columns.OBS])
        return self.vf(embeddings).squeeze(-1)

    def _dist_cls(self) -> type:
        return TorchCategorical if self.slate_size == 1 else plackett_luce(self.slate_size)

    def get_inference_action_dist_cls(self) -> type:
        return self._dist_cls()

    def get_exploration_action_dist_cls(self) -> type:
        return self._dist_cls()

    def get_train_action_dist_cls(self) -> type:
        return self._dist_cls()
