"""User response models: the simulator's ground truth for "how much does user u like item i".

Every model scores in batched numpy and answers in [0, 1] (a normalised rating ``(r - 1) / 4`` or a
click probability), so the env, the reference policies and the baselines never care which model
stands behind the simulator. Trained models (MF, two-tower) are fitted in torch and then exported to
plain factor arrays, because scoring 1024 users per env step must not pay torch's per-call overhead.

A model is saved as an artifact directory: ``response.json`` (kind, sizes, constructor parameters and
the held-out fit report) beside ``weights.npz``; :meth:`ResponseModel.load` restores any kind.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from rayrec import assets
from rayrec.data import Dataset, load_dataset, random_holdout
from rayrec.errors import AssetError, ConfigError

META_FILE = "response.json"
WEIGHTS_FILE = "weights.npz"


class ResponseModel:
    """Base of every response model; subclasses fill ``_arrays``/``_params`` and implement scoring.

    ``report`` holds the held-out fit (RMSE, AUC, epochs …) of fitted models, so an artifact always
    says how far its users can be trusted.
    """

    kind: ClassVar[str] = "base"
    registry: ClassVar[dict[str, type[ResponseModel]]] = {}

    n_users: int
    n_items: int
    report: dict

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        ResponseModel.registry[cls.kind] = cls

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Expected response in [0, 1] of ``users`` (B,) to ``items`` (B,) or (B, k); same shape as items."""
        raise NotImplementedError

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Expected response of ``users`` (B,) to every item: (B, n_items) float32 (greedy policies)."""
        raise NotImplementedError

    # --- persistence -------------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _params(self) -> dict:
        return {}

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], params: dict) -> ResponseModel:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the artifact directory (created if missing) and return it."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / WEIGHTS_FILE, **self._arrays())
        meta = {
            "kind": self.kind,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "params": self._params(),
            "report": self.report,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ResponseModel:
        """Restore a model saved by :meth:`save`, whatever its kind."""
        path = Path(path)
        meta_file = path / META_FILE
        if not meta_file.is_file() or not (path / WEIGHTS_FILE).is_file():
            raise AssetError(
                f"{path} is not a response-model artifact (needs {META_FILE} and {WEIGHTS_FILE}); "
                "fit one with `rayrec simulator fit DATASET --out DIR`"
            )
        meta = json.loads(meta_file.read_text())
        try:
            sub = ResponseModel.registry[meta["kind"]]
        except KeyError:
            raise AssetError(
                f"{meta_file}: unknown response-model kind {meta.get('kind')!r}; "
                f"known: {', '.join(sorted(ResponseModel.registry))}"
            ) from None
        with np.load(path / WEIGHTS_FILE) as npz:
            arrays = {k: npz[k] for k in npz.files}
        model = sub._from_saved(arrays, meta["params"])
        model.report = meta.get("report", {})
        return model


class _FactorModel(ResponseModel):
    """Biases plus dot product over exported factor arrays; the scoring core of MF and two-tower.

    ``link`` turns the raw value into [0, 1]: ``rating`` maps a predicted 1–5 rating to ``(r-1)/4``
    (clipped), ``sigmoid`` reads it as a click logit.
    """

    kind: ClassVar[str] = "factors"

    def __init__(
        self,
        user_factors: np.ndarray,  # (n_users, d)
        item_factors: np.ndarray,  # (n_items, d)
        user_bias: np.ndarray | None = None,  # (n_users,)
        item_bias: np.ndarray | None = None,  # (n_items,)
        global_bias: float = 0.0,
        link: str = "rating",
        report: dict | None = None,
    ) -> None:
        if link not in ("rating", "sigmoid"):
            raise ConfigError(f"link must be 'rating' or 'sigmoid', not {link!r}")
        if user_factors.ndim != 2 or item_factors.ndim != 2 or user_factors.shape[1] != item_factors.shape[1]:
            raise ConfigError(
                f"user/item factors must be 2-D with the same width, got {user_factors.shape} and "
                f"{item_factors.shape}"
            )
        self.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.n_users, self.n_items = len(user_factors), len(item_factors)
        self.user_bias = (
            np.zeros(self.n_users, np.float32) if user_bias is None else np.asarray(user_bias, np.float32)
        )
        self.item_bias = (
            np.zeros(self.n_items, np.float32) if item_bias is None else np.asarray(item_bias, np.float32)
        )
        self.global_bias = float(global_bias)
        self.link = link
        self.report = dict(report or {})

    def raw(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted rating (or logit) before the link; same shape as ``items``."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        u = self.user_factors[users]  # (B, d)
        v = self.item_factors[items]  # (B, d) or (B, k, d)
        if items.ndim == 1:
            dot = np.einsum("bd,bd->b", u, v)
            ub = self.user_bias[users]
        else:
            dot = np.einsum("bd,bkd->bk", u, v)
            ub = self.user_bias[users][:, None]
        return dot + ub + self.item_bias[items] + np.float32(self.global_bias)

    def _link(self, x: np.ndarray) -> np.ndarray:
        if self.link == "rating":
            return np.clip((x - 1.0) / 4.0, 0.0, 1.0).astype(np.float32, copy=False)
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32, copy=False)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._link(self.raw(users, items))

    def score_all(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        x = self.user_factors[users] @ self.item_factors.T  # (B, n_items)
        x += self.user_bias[users][:, None] + self.item_bias[None, :] + np.float32(self.global_bias)
        return self._link(x)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "user_bias": self.user_bias,
            "item_bias": self.item_bias,
        }

    def _params(self) -> dict:
        return {"global_bias": self.global_bias, "link": self.link}

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], params: dict) -> ResponseModel:
        return cls(**arrays, **params)


class MFResponseModel(_FactorModel):
    """Matrix factorisation (global + user + item biases + dot product) fitted on ratings."""

    kind: ClassVar[str] = "mf"


class TwoTowerResponseModel(_FactorModel):
    """Two towers: item vector = item embedding + projection of its categories, so rarely rated items
    borrow strength from their genre. Exported to factors like MF once trained."""

    kind: ClassVar[str] = "two-tower"


class LatentResponseModel(_FactorModel):
    """Ground truth from known latent factors (a synthetic world): click probability
    ``sigmoid(u·v + b_i)``."""

    kind: ClassVar[str] = "latent"

    def __init__(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        item_bias: np.ndarray | None = None,
        report: dict | None = None,
        **_saved: object,
    ) -> None:
        super().__init__(user_factors, item_factors, item_bias=item_bias, link="sigmoid", report=report)

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], params: dict) -> ResponseModel:
        return cls(arrays["user_factors"], arrays["item_factors"], item_bias=arrays["item_bias"])


class MatrixResponseModel(ResponseModel):
    """Ground truth from a fully observed user × item matrix (e.g. KuaiRec's small matrix).

    Missing cells (NaN/inf) take ``fill_value`` (default: the mean of the observed cells, as DORL
    does); values are divided by ``max_value`` and clipped to [0, 1], so a watch ratio capped at 5 is
    ``max_value=5``.
    """

    kind: ClassVar[str] = "matrix"

    def __init__(
        self,
        matrix: np.ndarray,
        fill_value: float | None = None,
        max_value: float = 1.0,
        report: dict | None = None,
    ) -> None:
        if matrix.ndim != 2:
            raise ConfigError(f"the response matrix must be 2-D (users × items), got shape {matrix.shape}")
        if max_value <= 0:
            raise ConfigError(f"max_value must be > 0, got {max_value}")
        m = np.array(matrix, dtype=np.float32)
        bad = ~np.isfinite(m)
        if fill_value is None:
            if bad.all():
                raise ConfigError("the response matrix has no finite cell to take a fill value from")
            fill_value = float(m[~bad].mean())
        m[bad] = fill_value
        self.matrix = np.clip(m / max_value, 0.0, 1.0)
        self.fill_value = float(fill_value)
        self.max_value = float(max_value)
        self.n_users, self.n_items = self.matrix.shape
        self.report = dict(report or {"missing_cells": int(bad.sum())})

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        rows = users if items.ndim == 1 else users[:, None]
        return self.matrix[rows, items]

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self.matrix[np.asarray(users, dtype=np.int64)]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"matrix": self.matrix}

    def _params(self) -> dict:
        # The stored matrix is already filled and normalised.
        return {"fill_value": self.fill_value, "max_value": self.max_value}

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], params: dict) -> ResponseModel:
        model = cls(arrays["matrix"], fill_value=params["fill_value"], max_value=1.0)
        model.max_value = params["max_value"]
        return model


# --- fitting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitConfig:
    """Knobs of :func:`fit_response_model`; defaults reach held-out RMSE ~0.92 on ml-100k in ~1 s.

    ``l2`` is weight decay applied to the embedding rows (and biases) each batch touches, the usual
    regularised-MF objective; dense ``Adam(weight_decay=…)`` would shrink every row on every step
    and needs an unintuitive tiny value to match.
    """

    dim: int = 32
    lr: float = 5e-3
    l2: float = 0.05
    batch_size: int = 1024
    max_epochs: int = 60
    patience: int = 3  # epochs without validation improvement before stopping
    valid_frac: float = 0.05  # slice of train used only for early stopping
    positive_rating: float = 4.0  # AUC label: rating >= this
    seed: int = 0


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
        """Predicted ratings (B,) and each row's squared parameter norm (B,) for the L2 term."""
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


def _tensors(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    df = ds.interactions
    return (
        torch.tensor(df["user"].to_numpy(), dtype=torch.int64),
        torch.tensor(df["item"].to_numpy(), dtype=torch.int64),
        torch.tensor(df["rating"].to_numpy(), dtype=torch.float32),
    )


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half); NaN when one
    class is missing, since the AUC is then undefined rather than 0.5."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_response_model(
    train: Dataset, test: Dataset, kind: str = "mf", **hyper: object
) -> tuple[ResponseModel, dict]:
    """Fit MF (``kind="mf"``) or the two-tower model on ``train`` ratings; report the ``test`` fit.

    A ``valid_frac`` slice of ``train`` drives early stopping and the best epoch's weights are kept,
    so ``test`` is never looked at until the final report (held-out RMSE of ratings clipped to
    [1, 5], AUC of the predicted rating for ``rating >= positive_rating``).
    """
    if kind not in ("mf", "two-tower"):
        raise ConfigError(f"fit kind must be 'mf' or 'two-tower', not {kind!r}")
    try:
        cfg = FitConfig(**hyper)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(
            f"unknown response-model setting: {exc}; known: {list(FitConfig.__annotations__)}"
        ) from exc
    if train.n_interactions < 2 or test.n_interactions < 1:
        raise ConfigError("fitting a response model needs at least 2 training and 1 test interactions")
    # Batches of 1024 x 32 gain nothing from intra-op threads, and spinning threads on a busy 2-core
    # box made one fit 30x slower; one thread, restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(train, test, kind, cfg)
    finally:
        torch.set_num_threads(threads)


def _fit(train: Dataset, test: Dataset, kind: str, cfg: FitConfig) -> tuple[ResponseModel, dict]:
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    users, items, ratings = _tensors(train)
    perm = torch.randperm(len(users), generator=gen)
    n_valid = max(1, int(cfg.valid_frac * len(users)))
    valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
    model = _BiasedDot(
        train.n_users,
        train.n_items,
        cfg.dim,
        float(ratings[train_idx].mean()),
        train.categories if kind == "two-tower" else None,
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def valid_rmse() -> float:
        with torch.no_grad():
            pred, _ = model(users[valid_idx], items[valid_idx])
            return float(((pred.clamp(1, 5) - ratings[valid_idx]) ** 2).mean().sqrt())

    best, best_state, best_epoch, stale, epoch = float("inf"), copy.deepcopy(model.state_dict()), 0, 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            pred, sq = model(users[batch], items[batch])
            loss = ((pred - ratings[batch]) ** 2).mean() + cfg.l2 * sq.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        rmse = valid_rmse()
        if rmse < best - 1e-4:
            best, best_state, best_epoch, stale = rmse, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state)
    cls = MFResponseModel if kind == "mf" else TwoTowerResponseModel
    fitted = cls(**model.export(), link="rating")  # type: ignore[arg-type]

    t = test.interactions
    pred = fitted.raw(t["user"].to_numpy(), t["item"].to_numpy()).clip(1.0, 5.0)
    truth = t["rating"].to_numpy(np.float32)
    report = {
        "kind": kind,
        "rmse": float(np.sqrt(np.mean((pred - truth) ** 2))),
        "rmse_global_mean": float(np.sqrt(np.mean((float(ratings[train_idx].mean()) - truth) ** 2))),
        "auc": roc_auc(pred, truth >= cfg.positive_rating),
        "valid_rmse": best,
        "best_epoch": best_epoch,
        "epochs": epoch,
        "n_train": len(train_idx),
        "n_valid": n_valid,
        "n_test": len(truth),
        "seconds": time.perf_counter() - started,
        "dataset": train.name,
        **asdict(cfg),
    }
    fitted.report = report
    return fitted, report


# --- the cached artifact per dataset --------------------------------------------------------------


def default_artifact_dir(dataset: str, kind: str = "mf") -> Path:
    """Where ``rayrec simulator fit`` keeps a dataset's response model: ``<cache>/simulators/<ds>-<kind>``."""
    return assets.cache_dir() / "simulators" / f"{dataset}-{kind}"


def cached_response_model(
    dataset: str, kind: str = "mf", path: str | Path | None = None, dataset_path: str | Path | None = None
) -> tuple[ResponseModel, Path]:
    """Load the response model of ``dataset`` from ``path`` (default: the cache), fitting and saving it
    first if there is none, so every simulator command and EnvRunner shares one ground truth.

    The fit uses ``random_holdout(test_frac=0.1, seed=0)``; returns the model and its artifact dir.
    """
    path = Path(path) if path is not None else default_artifact_dir(dataset, kind)
    if (path / META_FILE).is_file():
        return ResponseModel.load(path), path
    train, test = random_holdout(load_dataset(dataset, dataset_path), test_frac=0.1, seed=0)
    model, _ = fit_response_model(train, test, kind=kind)
    model.save(path)
    return model, path
