"""Fitting the trained response models (MF, two-tower) in torch, on the scale the dataset speaks.

Datasets log different kinds of feedback, and one link cannot serve them all (a 1–5 link on 0/1
clicks gives rewards near 0 while an RMSE on the clicks looks excellent). :func:`feedback_scale`
decides which kind a dataset has, or takes it as declared, and the fit follows it:

- ``explicit`` — bounded ratings (e.g. 1–5 stars): squared-error regression on the ratings; score =
  ``(r̂ − min) / (max − min)`` with the dataset's own observed min and max (``(r̂ − 1) / 4`` on
  MovieLens); report: RMSE on the rating scale, the global-mean predictor's RMSE, and the AUC of the
  prediction for ``rating >= positive_rating``.
- ``continuous`` — unbounded non-negative ratios (KuaiRec's ``watch_ratio``): values are clipped to
  ``[0, ratio_cap]`` (default 2.0, KuaiRec's usual "liked" cut, so anything watched twice or more is
  full satisfaction), then treated like explicit ratings on that range; RMSE is on the clipped scale.
- ``binary`` — 0/1 labels (KuaiRand's ``is_click``): logistic regression (cross-entropy) on the
  labels; score = predicted click probability; report: log loss, the base-rate predictor's log loss
  and AUC.
- ``implicit`` — every row is a positive (a log without a rating column, or a constant rating): a
  pointwise model cannot learn from positives alone, so each training positive gets ``neg_ratio``
  sampled negatives (items drawn uniformly among those the user has no training interaction with)
  and the model is fitted as ``binary``; score = probability that the pair is a real interaction
  rather than a random item, so a random item scores low and a user's kind of item scores high.
  The held-out report uses the test positives against the same number of fresh negatives.

The scale rules and :class:`~rayrec.envs.feedback.FitConfig` (every setting a fit depends on, also part
of the artifact cache key in ``rayrec.envs.artifacts``) live in ``rayrec.envs.feedback``, free of torch.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rayrec.data import Dataset
from rayrec.envs.feedback import FITTED_KINDS, FeedbackScale, FitConfig, feedback_scale
from rayrec.envs.response import MFResponseModel, ResponseModel, TwoTowerResponseModel
from rayrec.errors import ConfigError
from rayrec.eval.classification import log_loss, roc_auc


class _BiasedDot(nn.Module):
    """rating = mu + b_u + b_i + <p_u, v_i>; the two-tower variant adds the item's categories to v_i
    and b_i through linear maps, so items with few ratings inherit their genres' position."""

    def __init__(self, n_users: int, n_items: int, dim: int, mean: float, categories: np.ndarray | None):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.mu = nn.Parameter(torch.tensor(mean))
        nn.init.normal_(self.user.weight, 0.0, 0.01)
        nn.init.normal_(self.item.weight, 0.0, 0.01)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.cat_vec: nn.Linear | None = None
        self.cat_bias: nn.Linear | None = None
        if categories is not None:
            self.register_buffer("cats", torch.as_tensor(categories, dtype=torch.float32))  # (n_items, C)
            self.cat_vec = nn.Linear(categories.shape[1], dim, bias=False)
            self.cat_bias = nn.Linear(categories.shape[1], 1, bias=False)
            nn.init.zeros_(self.cat_vec.weight)
            nn.init.zeros_(self.cat_bias.weight)

    def item_tower(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.item(items)  # (B, d)
        b = self.item_bias(items)[:, 0]  # (B,)
        if self.cat_vec is not None:
            c = self.cats[items]  # (B, C)
            v = v + self.cat_vec(c)
            b = b + self.cat_bias(c)[:, 0]
        return v, b

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted ratings or logits (B,) and each row's squared parameter norm (B,) for the L2 term."""
        p = self.user(users)
        bu = self.user_bias(users)[:, 0]
        v, bi = self.item_tower(items)
        pred = self.mu + bu + bi + (p * v).sum(-1)
        sq = (p**2).sum(-1) + (v**2).sum(-1) + bu**2 + bi**2
        return pred, sq

    @torch.no_grad()
    def export(self) -> dict[str, np.ndarray | float]:
        v, b = self.item_tower(torch.arange(self.item.num_embeddings))
        return {
            "user_factors": self.user.weight.numpy().copy(),
            "item_factors": v.numpy().copy(),
            "user_bias": self.user_bias.weight[:, 0].numpy().copy(),
            "item_bias": b.numpy().copy(),
            "global_bias": float(self.mu),
        }


def sample_negatives(
    users: np.ndarray, n_items: int, known: np.ndarray, ratio: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``ratio`` uniformly drawn items per entry of ``users`` that are not in ``known`` (sorted
    ``user * n_items + item`` keys of the user's positives); redrawn until clean (a user who has
    interacted with almost every item keeps a few positives as negatives after 20 rounds)."""
    neg_users = np.repeat(np.asarray(users, dtype=np.int64), ratio)
    neg_items = rng.integers(0, n_items, len(neg_users))
    for _ in range(20):
        bad = np.flatnonzero(np.isin(neg_users * n_items + neg_items, known, assume_unique=False))
        if not len(bad):
            break
        neg_items[bad] = rng.integers(0, n_items, len(bad))
    return neg_users, neg_items


def fit_response_model(
    train: Dataset, test: Dataset, kind: str = "mf", **hyper: object
) -> tuple[ResponseModel, dict]:
    """Fit MF (``kind="mf"``) or the two-tower model on ``train``; report the ``test`` fit.

    ``hyper`` are :class:`FitConfig` fields. A ``valid_frac`` slice of ``train`` drives early stopping
    and the best epoch's weights are kept, so ``test`` is never looked at until the final report,
    which speaks in the dataset's feedback scale (see the module docstring).
    """
    if kind not in FITTED_KINDS:
        raise ConfigError(f"fit kind must be 'mf' or 'two_tower', not {kind!r}")
    cfg = FitConfig.from_dict(dict(hyper))
    if train.n_interactions < 2 or test.n_interactions < 1:
        raise ConfigError("fitting a response model needs at least 2 training and 1 test interactions")
    scale = feedback_scale(train, cfg.feedback, cfg.ratio_cap)
    # Batches of 1024 x 32 gain nothing from intra-op threads, and spinning threads on a busy 2-core
    # box made one fit 30x slower; one thread, restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(train, test, kind, cfg, scale)
    finally:
        torch.set_num_threads(threads)


def _labelled(ds: Dataset, scale: FeedbackScale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = ds.interactions
    y = df["rating"].to_numpy(np.float32)
    if scale.kind in ("explicit", "continuous"):
        y = np.clip(y, scale.low, scale.high)
    return df["user"].to_numpy(np.int64), df["item"].to_numpy(np.int64), y


def _fit(
    train: Dataset, test: Dataset, kind: str, cfg: FitConfig, scale: FeedbackScale
) -> tuple[ResponseModel, dict]:
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    u_np, i_np, y_np = _labelled(train, scale)
    t_u, t_i, t_y = _labelled(test, scale)
    classify = scale.kind in ("binary", "implicit")
    if scale.kind == "implicit":
        rng = np.random.default_rng(cfg.seed)
        known = np.unique(u_np * train.n_items + i_np)
        nu, ni = sample_negatives(u_np, train.n_items, known, cfg.neg_ratio, rng)
        u_np, i_np = np.concatenate([u_np, nu]), np.concatenate([i_np, ni])
        y_np = np.concatenate([np.ones(len(y_np), np.float32), np.zeros(len(nu), np.float32)])
        known_all = np.union1d(known, t_u * train.n_items + t_i)
        tnu, tni = sample_negatives(t_u, train.n_items, known_all, cfg.neg_ratio, rng)
        t_u, t_i = np.concatenate([t_u, tnu]), np.concatenate([t_i, tni])
        t_y = np.concatenate([np.ones(len(t_y), np.float32), np.zeros(len(tnu), np.float32)])
    users, items, ratings = (torch.tensor(a) for a in (u_np, i_np, y_np))
    perm = torch.randperm(len(users), generator=gen)
    n_valid = max(1, int(cfg.valid_frac * len(users)))
    valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
    mean = float(ratings[train_idx].mean())
    if classify:
        p = min(max(mean, 1e-4), 1 - 1e-4)
        mean = float(np.log(p / (1 - p)))
    model = _BiasedDot(
        train.n_users,
        train.n_items,
        cfg.dim,
        mean,
        train.categories if kind == "two_tower" else None,
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def data_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if classify:
            return F.binary_cross_entropy_with_logits(pred, y)
        return ((pred - y) ** 2).mean()

    def valid_loss() -> float:
        with torch.no_grad():
            pred, _ = model(users[valid_idx], items[valid_idx])
            if classify:
                return float(F.binary_cross_entropy_with_logits(pred, ratings[valid_idx]))
            return float(((pred.clamp(scale.low, scale.high) - ratings[valid_idx]) ** 2).mean().sqrt())

    best, best_state, best_epoch, stale, epoch = float("inf"), copy.deepcopy(model.state_dict()), 0, 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            pred, sq = model(users[batch], items[batch])
            loss = data_loss(pred, ratings[batch]) + cfg.l2 * sq.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        current = valid_loss()
        if current < best - 1e-4:
            best, best_state, best_epoch, stale = current, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state)
    cls = MFResponseModel if kind == "mf" else TwoTowerResponseModel
    if classify:
        fitted = cls(**model.export(), link="sigmoid")  # type: ignore[arg-type]
    else:
        fitted = cls(**model.export(), link="rating", scale_min=scale.low, scale_max=scale.high)  # type: ignore[arg-type]

    report: dict[str, Any] = {"kind": kind, "feedback": scale.kind, "feedback_reason": scale.reason}
    report |= {"scale_min": scale.low, "scale_max": scale.high}
    train_mean = float(ratings[train_idx].mean())
    if classify:
        prob = fitted.score(t_u, t_i)
        report |= {
            "log_loss": log_loss(prob, t_y),
            "log_loss_base_rate": log_loss(np.full(len(t_y), train_mean), t_y),
            "auc": roc_auc(prob, t_y > 0.5),
            "positive_rate": float(t_y.mean()),
            "valid_log_loss": best,
        }
    else:
        positive = cfg.positive_rating
        if positive is None:
            positive = scale.low + 0.75 * (scale.high - scale.low)
        pred = fitted.raw(t_u, t_i).clip(scale.low, scale.high)
        report |= {
            "rmse": float(np.sqrt(np.mean((pred - t_y) ** 2))),
            "rmse_global_mean": float(np.sqrt(np.mean((train_mean - t_y) ** 2))),
            "auc": roc_auc(pred, t_y >= positive),
            "auc_positive_rating": float(positive),
            "valid_rmse": best,
        }
    report |= {
        "best_epoch": best_epoch,
        "epochs": epoch,
        "n_train": len(train_idx),
        "n_valid": n_valid,
        "n_test": len(t_y),
        "seconds": time.perf_counter() - started,
        "dataset": train.name,
        "fit": cfg.to_dict(),
    }
    fitted.report = report
    return fitted, report
