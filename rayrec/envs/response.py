"""User response models: the simulator's ground truth for "how much does user u like item i".

Every model scores in batched numpy and answers in [0, 1] (a rating normalised by the dataset's own
scale, ``(r - min) / (max - min)``, or a click probability), so the env, the reference policies and
the baselines never care which model stands behind the simulator. Trained models (MF, two-tower) are
fitted in torch (``rayrec.envs.fitting``) and exported to plain factor arrays, because scoring 1024
users per env step must not pay torch's per-call overhead.

A model travels as a *payload* (kind, sizes, parameters, fit report and its numpy arrays: plain
values), which is how an env_config carries it to EnvRunners on other nodes, and is saved as an
artifact directory: ``response.json`` beside ``weights.npz``, written to a temporary sibling and
renamed into place so a reader never sees half an artifact. :meth:`ResponseModel.load` restores any
kind; caching by dataset and settings is ``rayrec.envs.artifacts``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

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

    def to_payload(self) -> dict[str, Any]:
        """Everything needed to rebuild the model, as plain values and numpy arrays (no paths)."""
        return {
            "kind": self.kind,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "params": self._params(),
            "report": self.report,
            "arrays": self._arrays(),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ResponseModel:
        """Rebuild a model from :meth:`to_payload` (e.g. inside an EnvRunner on another node)."""
        try:
            sub = ResponseModel.registry[payload["kind"]]
        except KeyError:
            raise AssetError(
                f"unknown response-model kind {payload.get('kind')!r}; "
                f"known: {', '.join(sorted(ResponseModel.registry))}; refit it with `rayrec simulator fit`"
            ) from None
        model = sub._from_saved(dict(payload["arrays"]), dict(payload["params"]))
        model.report = dict(payload.get("report", {}))
        return model

    def digest(self) -> str:
        """Short sha256 of the kind, parameters and arrays: equal digests score identically."""
        h = hashlib.sha256(json.dumps([self.kind, self._params()], sort_keys=True).encode())
        for name, arr in sorted(self._arrays().items()):
            h.update(name.encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path, extra_meta: dict | None = None) -> Path:
        """Write the artifact directory atomically and return it.

        The files go to a temporary sibling directory first, which is then renamed to ``path``; a
        concurrent writer of the same artifact loses the race harmlessly (its copy is dropped), and an
        existing directory at ``path`` is replaced. ``extra_meta`` (e.g. the cache key) is stored in
        ``response.json`` beside the model's own fields.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = self.to_payload()
        meta = {k: v for k, v in payload.items() if k != "arrays"} | dict(extra_meta or {})
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            np.savez(tmp / WEIGHTS_FILE, **payload["arrays"])
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, old / "artifact")
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.replace(tmp, path)
            except OSError:
                if not (path / META_FILE).is_file():  # someone else's complete copy is fine; else fail
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def read_meta(cls, path: str | Path) -> dict:
        """The artifact's ``response.json`` (kind, sizes, parameters, fit report, cache key)."""
        path = Path(path)
        meta_file = path / META_FILE
        if not meta_file.is_file() or not (path / WEIGHTS_FILE).is_file():
            raise AssetError(
                f"{path} is not a response-model artifact (needs {META_FILE} and {WEIGHTS_FILE}); "
                "fit one with `rayrec simulator fit DATASET --out DIR`"
            )
        return json.loads(meta_file.read_text())

    @classmethod
    def load(cls, path: str | Path) -> ResponseModel:
        """Restore a model saved by :meth:`save`, whatever its kind."""
        path = Path(path)
        meta = cls.read_meta(path)
        with np.load(path / WEIGHTS_FILE) as npz:
            arrays = {k: npz[k] for k in npz.files}
        try:
            return cls.from_payload({**meta, "arrays": arrays})
        except AssetError as exc:
            raise AssetError(f"{path / META_FILE}: {exc}") from None


class _FactorModel(ResponseModel):
    """Biases plus dot product over exported factor arrays; the scoring core of MF and two-tower.

    ``link`` turns the raw value into [0, 1]: ``rating`` maps a predicted rating on the dataset's
    scale ``[scale_min, scale_max]`` to ``(r - scale_min) / (scale_max - scale_min)`` (clipped; on a
    1–5 scale that is ``(r - 1) / 4``), ``sigmoid`` reads it as a click logit.
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
        scale_min: float = 1.0,
        scale_max: float = 5.0,
    ) -> None:
        if link not in ("rating", "sigmoid"):
            raise ConfigError(f"link must be 'rating' or 'sigmoid', not {link!r}")
        if not scale_max > scale_min:
            raise ConfigError(f"scale_max must exceed scale_min (got {scale_min}, {scale_max})")
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
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
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
            lo, span = np.float32(self.scale_min), np.float32(self.scale_max - self.scale_min)
            return np.clip((x - lo) / span, 0.0, 1.0).astype(np.float32, copy=False)
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
        return {
            "global_bias": self.global_bias,
            "link": self.link,
            "scale_min": self.scale_min,
            "scale_max": self.scale_max,
        }

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], params: dict) -> ResponseModel:
        return cls(**arrays, **params)


class MFResponseModel(_FactorModel):
    """Matrix factorisation (global + user + item biases + dot product) fitted on ratings."""

    kind: ClassVar[str] = "mf"


class TwoTowerResponseModel(_FactorModel):
    """Two towers: item vector = item embedding + projection of its categories, so rarely rated items
    borrow strength from their genre. Exported to factors like MF once trained."""

    kind: ClassVar[str] = "two_tower"


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
