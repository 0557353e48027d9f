"""Sequence encoders over an (item, rating) history, shared by LAAC and the sequential baselines.

Input: the logged MDP's state vector (B, 2N) float: N item ids (left-padded with ``pad_id = n_items``)
then their N ratings (0 on pads). Output: (B, d), the encoding at the most recent position.
"""

from __future__ import annotations

import torch
from torch import nn

from rayrec.errors import ConfigError

ENCODERS = ("gru", "sasrec")


def split_state(obs: torch.Tensor, history_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2N) state -> item ids (B, N) int64 and ratings (B, N) float."""
    return obs[:, :history_len].round().long(), obs[:, history_len:].float()


class _Embed(nn.Module):
    """Item embedding plus a learned projection of the (scaled) rating, so "liked" and "disliked"
    histories differ."""

    def __init__(self, n_items: int, dim: int, rating_scale: float) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.rating = nn.Linear(1, dim, bias=False)
        self.rating_scale = float(rating_scale)

    def forward(self, items: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        return self.items(items) + self.rating((ratings / self.rating_scale).unsqueeze(-1))  # (B, N, d)


class GRUEncoder(nn.Module):
    """GRU4Rec-style: one GRU layer; the last position is the most recent item (left padding)."""

    def __init__(self, n_items: int, history_len: int, dim: int = 64, rating_scale: float = 5.0) -> None:
        super().__init__()
        self.history_len = history_len
        self.embed = _Embed(n_items, dim, rating_scale)
        self.gru = nn.GRU(dim, dim, batch_first=True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        items, ratings = split_state(obs, self.history_len)
        out, _ = self.gru(self.embed(items, ratings))  # (B, N, d)
        return out[:, -1]  # (B, d)


class SASRecEncoder(nn.Module):
    """SASRec-style: learned positions, causal self-attention blocks, pads masked as keys."""

    def __init__(
        self,
        n_items: int,
        history_len: int,
        dim: int = 64,
        rating_scale: float = 5.0,
        n_blocks: int = 2,
        n_heads: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.history_len = history_len
        self.pad_id = n_items
        self.embed = _Embed(n_items, dim, rating_scale)
        self.pos = nn.Embedding(history_len, dim)
        layer = nn.TransformerEncoderLayer(
            dim, n_heads, dim_feedforward=dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, n_blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        causal = torch.triu(torch.ones(history_len, history_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encode_all(obs)[:, -1]  # (B, d)

    def encode_all(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, N, d): the encoding at every position (causal: position t sees slots <= t), so the
        supervised SASRec trains on every next-item target of a window in one pass."""
        items, ratings = split_state(obs, self.history_len)
        x = self.embed(items, ratings) * self.embed.items.embedding_dim**0.5
        x = x + self.pos.weight.unsqueeze(0)  # (B, N, d)
        pad = items == self.pad_id
        pad[:, -1] = False  # an all-pad (first) state still attends to its last slot, never to nothing
        h = self.blocks(x, mask=self.causal, src_key_padding_mask=pad)
        return self.norm(h)  # (B, N, d)


def make_encoder(
    kind: str, n_items: int, history_len: int, dim: int = 64, rating_scale: float = 5.0
) -> nn.Module:
    if kind == "gru":
        return GRUEncoder(n_items, history_len, dim, rating_scale)
    if kind == "sasrec":
        return SASRecEncoder(n_items, history_len, dim, rating_scale)
    raise ConfigError(f"encoder must be one of {ENCODERS}, not {kind!r}")
