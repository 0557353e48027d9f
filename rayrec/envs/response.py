"""User response models: the simulator's ground truth for "how much does user u like item i".

Every model scores in batched numpy and answers in [0, 1] (a normalised rating ``(r - 1) / 4`` or a
click probability), so the env, the reference policies and the baselines never care which model
stands behind the simulator. Trained models (MF, two-tower) are fitted in torch and then exported to
plain factor arrays, because scoring 1024 users per env step must not pay torch's per-call overhead.

A model is saved as an artifact directory: ``response.json`` (kind, sizes, constructor parameters and
the held-out fit report) beside ``weights.npz``; :meth:`ResponseModel.load` restores any kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

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
