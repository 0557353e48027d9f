"""Synthetic worlds: users, items, categories and logged interactions drawn from known latent factors.

Real logs never tell what a user would have thought of an item they were not shown; a synthetic world
does, so the simulator can use its factors as ground truth and scale tests can reach millions of users.

Generative story (every draw from one seeded generator, so one config gives one world):

- each category has a centre in R^d; an item sits near the centre of its primary category (and may
  carry a second category); a user is a mix of two preferred category centres plus noise;
- ground-truth affinity ``a(u, i) = <user_factors[u], item_factors[i]> + item_bias[i]``;
- exposure follows Zipf popularity (``p_i ∝ rank_i^-zipf``, ranks shuffled over item ids);
- each user is shown ``oversample x n_u`` candidates by exposure, keeps each with probability
  ``sigmoid(a(u, i))`` (first occurrence only), and the first ``n_u`` kept become their history, with
  ``n_u = min_interactions + Geometric`` so the mean is ``mean_interactions`` (users who keep fewer
  than ``n_u``, mostly in small catalogs, are counted in ``meta['users_short']``);
- rating = ``clip(round(3 + 1.5 a(u, i) + N(0, 0.5²)), 1, 5)``, so "rating >= 4" means the user liked it;
- timestamps: a start in a 180-day window, then exponential gaps of mean one hour.

Generation is vectorised over chunks of users in int32/float32, so 1M users x 100k items fits in a
minute and a few GiB (``bench/data_metrics.py`` measures it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError

EPOCH = 1_600_000_000  # seconds; any fixed origin works, this one reads like a real log
WINDOW_S = 180 * 86_400
MEAN_GAP_S = 3_600.0


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and shape of a world. Defaults make a small world that builds in well under a second."""

    n_users: int = 1_000
    n_items: int = 500
    n_categories: int = 10
    zipf: float = 1.0
    dim: int = 16
    mean_interactions: float = 20.0
    min_interactions: int = 5
    oversample: float = 4.0
    second_category_prob: float = 0.3
    seed: int = 0
    chunk_users: int = 50_000

    def check(self) -> None:
        if min(self.n_users, self.n_items, self.n_categories, self.dim, self.chunk_users) < 1:
            raise ConfigError("n_users, n_items, n_categories, dim and chunk_users must all be >= 1")
        if not 1 <= self.min_interactions <= self.mean_interactions <= self.n_items:
            raise ConfigError("need 1 <= min_interactions <= mean_interactions <= n_items")
        if self.zipf < 0 or self.oversample < 1 or not 0 <= self.second_category_prob <= 1:
            raise ConfigError("need zipf >= 0, oversample >= 1 and 0 <= second_category_prob <= 1")


@dataclass
class SyntheticWorld:
    """A Dataset together with the latent truth it was drawn from (aligned with its internal ids)."""

    dataset: Dataset
    user_factors: np.ndarray  # (n_users, dim) float32
    item_factors: np.ndarray  # (n_items, dim) float32
    item_bias: np.ndarray  # (n_items,) float32
    item_exposure: np.ndarray  # (n_items,) float64, Zipf exposure probabilities (sum to 1)
    item_category: np.ndarray  # (n_items,) int32, primary category of each item
    config: SyntheticConfig

    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Ground-truth affinity of aligned (user, item) pairs; sigmoid of it is the acceptance chance."""
        return (
            np.einsum("nd,nd->n", self.user_factors[users], self.item_factors[items]) + self.item_bias[items]
        )


def make_world(config: SyntheticConfig | None = None, **overrides: object) -> SyntheticWorld:
    """Draw a world from ``config`` (fields may also be given as keyword overrides)."""
    cfg = SyntheticConfig(**{**asdict(config or SyntheticConfig()), **overrides})
    cfg.check()
    rng = np.random.default_rng(cfg.seed)
    d = cfg.dim
    centres = rng.normal(0, 1 / np.sqrt(d), (cfg.n_categories, d)).astype(np.float32)

    primary = rng.choice(cfg.n_categories, cfg.n_items, p=rng.dirichlet(np.full(cfg.n_categories, 5.0)))
    item_factors = centres[primary] + rng.normal(0, 0.5 / np.sqrt(d), (cfg.n_items, d)).astype(np.float32)
    item_bias = rng.normal(-0.5, 0.5, cfg.n_items).astype(np.float32)
    categories = np.zeros((cfg.n_items, cfg.n_categories), dtype=bool)
    categories[np.arange(cfg.n_items), primary] = True
    second = rng.random(cfg.n_items) < cfg.second_category_prob
    if cfg.n_categories > 1:
        # a different category than the primary one: shift by 1..n_cat-1
        other = (primary + rng.integers(1, cfg.n_categories, cfg.n_items)) % cfg.n_categories
        categories[np.flatnonzero(second), other[second]] = True

    ranks = rng.permutation(cfg.n_items) + 1
    exposure = ranks.astype(np.float64) ** -cfg.zipf
    exposure /= exposure.sum()

    user_factors = np.empty((cfg.n_users, d), dtype=np.float32)
    parts: list[tuple[np.ndarray, ...]] = []
    cdf = np.cumsum(exposure)
    cdf[-1] = 1.0
    p_geom = 1.0 / (cfg.mean_interactions - cfg.min_interactions + 1)
    for start in range(0, cfg.n_users, cfg.chunk_users):
        stop = min(start + cfg.chunk_users, cfg.n_users)
        liked = rng.integers(0, cfg.n_categories, (stop - start, 2))
        user_factors[start:stop] = 1.5 * (centres[liked[:, 0]] + centres[liked[:, 1]]) + rng.normal(
            0, 0.5 / np.sqrt(d), (stop - start, d)
        ).astype(np.float32)
        parts.append(
            _chunk_interactions(rng, cfg, start, stop, user_factors, item_factors, item_bias, cdf, p_geom)
        )

    user, item, rating, timestamp, short = (np.concatenate(cols) for cols in zip(*parts))
    interactions = pd.DataFrame(
        {
            "user": user.astype(np.int64),
            "item": item.astype(np.int64),
            "rating": rating,
            "timestamp": timestamp,
        }
    )
    dataset = Dataset(
        name="synthetic",
        interactions=interactions,  # already in (user, timestamp) order
        user_ids=np.arange(cfg.n_users),
        item_ids=np.arange(cfg.n_items),
        categories=categories,
        category_names=[f"cat{k}" for k in range(cfg.n_categories)],
        item_titles=np.array([f"item {i}" for i in range(cfg.n_items)], dtype=object),
        item_years=np.full(cfg.n_items, -1, dtype=np.int64),
        meta={"source": "synthetic", **asdict(cfg), "users_short": int(short.sum())},
    )
    return SyntheticWorld(
        dataset, user_factors, item_factors, item_bias, exposure, primary.astype(np.int32), cfg
    )


def _chunk_interactions(
    rng: np.random.Generator,
    cfg: SyntheticConfig,
    start: int,
    stop: int,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    cdf: np.ndarray,
    p_geom: float,
) -> tuple[np.ndarray, ...]:
    """(user, item, rating, timestamp) of users ``start..stop-1`` in user then time order, and the
    number of those users who kept fewer than ``n_u`` candidates (a one-element array)."""
    n = stop - start
    wanted = cfg.min_interactions - 1 + rng.geometric(p_geom, n)
    wanted = np.minimum(wanted, cfg.n_items).astype(np.int32)  # (n,)
    shown = np.ceil(cfg.oversample * wanted).astype(np.int64)  # candidates per user
    cand_user = np.repeat(np.arange(start, stop, dtype=np.int32), shown)  # (C,)
    cand_item = np.searchsorted(cdf, rng.random(len(cand_user), dtype=np.float32)).astype(np.int32)
    cand_item = np.minimum(cand_item, cfg.n_items - 1)  # float32 draws can round up to 1.0

    # affinity (C,) in blocks so the gathered (block, d) factors stay small
    aff = np.empty(len(cand_user), dtype=np.float32)
    block = 1 << 20
    for b in range(0, len(cand_user), block):
        u, i = cand_user[b : b + block], cand_item[b : b + block]
        aff[b : b + block] = np.einsum("nd,nd->n", user_factors[u], item_factors[i]) + item_bias[i]
    accept = rng.random(len(aff), dtype=np.float32) < 1.0 / (1.0 + np.exp(-aff))

    # first occurrence of each (user, item) among accepted candidates, keeping draw order
    idx = np.flatnonzero(accept)
    key = (cand_user[idx].astype(np.int64) - start) * cfg.n_items + cand_item[idx]
    _, first = np.unique(key, return_index=True)
    idx = idx[np.sort(first)]

    # keep each user's first `wanted` of them
    u_local = cand_user[idx] - start
    counts = np.bincount(u_local, minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(idx)) - offsets[u_local]
    idx = idx[position < wanted[u_local]]

    users, items, a = cand_user[idx], cand_item[idx], aff[idx]
    noise = rng.normal(0.0, 0.5, len(idx)).astype(np.float32)
    rating = np.clip(np.round(3.0 + 1.5 * a + noise), 1, 5).astype(np.float32)

    # timestamps: per-user start + running sum of exponential gaps, reset at each user's first row
    kept = np.bincount(users - start, minlength=n)
    gaps = rng.exponential(MEAN_GAP_S, len(idx))
    run = np.cumsum(gaps)
    first_row = np.concatenate([[0], np.cumsum(kept)[:-1]])
    base = np.repeat(run[first_row[kept > 0]] - gaps[first_row[kept > 0]], kept[kept > 0])
    begin = np.repeat(rng.integers(0, WINDOW_S, n)[kept > 0], kept[kept > 0])
    timestamp = (EPOCH + begin + (run - base)).astype(np.int64)
    return users, items, rating, timestamp, np.array([(kept < wanted).sum()])
