"""Building a dataset's response model by kind, and caching it under a key of everything that shapes it.

Kinds (``RESPONSE_KINDS``):

- ``mf`` / ``two_tower`` — fitted on a random holdout of the dataset (``rayrec.envs.fitting``), on the
  dataset's feedback scale (``rayrec.envs.feedback``).
- ``matrix`` — the dataset's observed cells *are* the ground truth (KuaiRec's fully observed small
  matrix is the intended source): each cell is the mean of its observed feedback normalised to [0, 1]
  on the feedback scale; cells never observed take the mean of the observed cells (DORL's fill). The
  dense matrix must fit in memory (``MAX_MATRIX_CELLS``); implicit feedback is refused (no negative
  cell exists to read).
- ``latent`` — a synthetic world's own factors (``sigmoid(u·v + b_i)``): the world is regenerated
  from the generator settings the dataset carries in ``meta``, so only ``synthetic`` qualifies.

The cache directory is ``<cache>/simulators/<dataset>-<kind>-<hash>``, where the hash covers the
dataset name, its resolved path and that path's size/mtime, the loader options, the kind, every
:class:`~rayrec.envs.feedback.FitConfig` field and ``FORMAT_VERSION``; the artifact's
``response.json`` records the key itself. So ``rayrec simulator fit ml-100k --dim 8`` writes beside,
never over, the default model that ``simulate``, the demo and the env use, and two CSVs that share a
name never share an artifact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rayrec import assets
from rayrec.data import Dataset, load_dataset, random_holdout
from rayrec.data.synthetic import SyntheticConfig, make_world
from rayrec.envs.feedback import FITTED_KINDS, FitConfig, feedback_scale
from rayrec.envs.response import LatentResponseModel, MatrixResponseModel, ResponseModel
from rayrec.errors import AssetError, ConfigError

RESPONSE_KINDS = (*FITTED_KINDS, "matrix", "latent")
FORMAT_VERSION = 2  # bump when a change of code changes what a cached artifact would hold
MAX_MATRIX_CELLS = 50_000_000  # 200 MB of float32


def check_kind(kind: str) -> str:
    if kind not in RESPONSE_KINDS:
        raise ConfigError(f"response-model kind must be one of {', '.join(RESPONSE_KINDS)}, not {kind!r}")
    return kind


def require_categories(ds: Dataset) -> Dataset:
    """The simulator's quit models, policies and metrics all work on item categories: refuse early."""
    if ds.n_categories == 0:
        raise ConfigError(
            f"dataset {ds.name!r} has no item categories, which the simulator needs (quit models, "
            "category masks, diversity metrics); for a CSV pass an item file with a categories column "
            "(--option items_path=ITEMS.csv)"
        )
    return ds


def _source_stat(path: Path) -> list:
    """Size and mtime of the source (a file, or a directory's files), so an edited file refits."""
    if path.is_file():
        st = path.stat()
        return [path.name, st.st_size, st.st_mtime_ns]
    if path.is_dir():
        return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir() if p.is_file())
    return []


def cache_key(
    dataset: str,
    kind: str = "mf",
    dataset_path: str | Path | None = None,
    loader_options: dict[str, Any] | None = None,
    fit: FitConfig | None = None,
) -> dict[str, Any]:
    """Everything that changes the model, as plain JSON-able values."""
    check_kind(kind)
    resolved = None if dataset_path is None else Path(dataset_path).expanduser().resolve()
    return {
        "format": FORMAT_VERSION,
        "dataset": dataset,
        "dataset_path": None if resolved is None else str(resolved),
        "source_stat": None if resolved is None else _source_stat(resolved),
        "loader_options": json.loads(json.dumps(loader_options or {}, sort_keys=True, default=str)),
        "kind": kind,
        # matrix and latent are read, not fitted: their fit settings do not matter
        "fit": (fit or FitConfig()).to_dict() if kind in FITTED_KINDS else None,
    }


def key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def default_artifact_dir(
    dataset: str,
    kind: str = "mf",
    dataset_path: str | Path | None = None,
    loader_options: dict[str, Any] | None = None,
    fit: FitConfig | None = None,
) -> Path:
    """``<cache>/simulators/<dataset>-<kind>-<hash of the cache key>``."""
    key = cache_key(dataset, kind, dataset_path, loader_options, fit)
    return assets.cache_dir() / "simulators" / f"{dataset}-{kind}-{key_hash(key)}"


def matrix_from_dataset(ds: Dataset, fit: FitConfig | None = None) -> MatrixResponseModel:
    """The observed cells on the feedback scale (mean of repeats), missing cells at the observed mean."""
    fit = fit or FitConfig()
    cells = ds.n_users * ds.n_items
    if cells > MAX_MATRIX_CELLS:
        raise ConfigError(
            f"{ds.name}: a dense {ds.n_users} x {ds.n_items} matrix ({cells:,} cells) exceeds "
            f"{MAX_MATRIX_CELLS:,}; use a fully observed subset (KuaiRec's small matrix) or --kind mf"
        )
    scale = feedback_scale(ds, fit.feedback, fit.ratio_cap)
    df = ds.interactions
    values = pd.Series(scale.normalise(df["rating"].to_numpy()))
    cell = df["user"].to_numpy(np.int64) * ds.n_items + df["item"].to_numpy(np.int64)
    means = values.groupby(cell).mean()
    matrix = np.full(cells, np.nan, dtype=np.float32)
    matrix[means.index.to_numpy()] = means.to_numpy(np.float32)
    observed = len(means)
    model = MatrixResponseModel(matrix.reshape(ds.n_users, ds.n_items), max_value=1.0)
    model.report = {
        "kind": "matrix",
        "dataset": ds.name,
        "feedback": scale.kind,
        "feedback_reason": scale.reason,
        "scale_min": scale.low,
        "scale_max": scale.high,
        "observed_cells": observed,
        "observed_share": observed / cells,
        "missing_cells": cells - observed,
        "fill_value": model.fill_value,
    }
    return model


def latent_from_dataset(ds: Dataset) -> LatentResponseModel:
    """The synthetic world's factors, regenerated from the generator settings in ``ds.meta``."""
    names = [f.name for f in fields(SyntheticConfig)]
    if ds.meta.get("source") != "synthetic" or any(n not in ds.meta for n in names):
        raise ConfigError(
            f"the latent kind needs a synthetic world (dataset 'synthetic'); {ds.name!r} has no latent "
            "factors: use --kind mf, or --kind matrix on a fully observed matrix"
        )
    world = make_world(SyntheticConfig(**{n: ds.meta[n] for n in names}))
    if world.dataset.n_users != ds.n_users or world.dataset.n_items != ds.n_items:
        raise ConfigError(f"{ds.name}: regenerating the synthetic world gave other sizes; was it filtered?")
    model = LatentResponseModel(world.user_factors, world.item_factors, world.item_bias)
    model.report = {"kind": "latent", "dataset": ds.name, "feedback": "binary", "world": asdict(world.config)}
    return model


def build_response_model(ds: Dataset, kind: str = "mf", fit: FitConfig | None = None) -> ResponseModel:
    """The response model of ``kind`` for ``ds``; fitted kinds use ``random_holdout(fit.test_frac,
    fit.seed)`` and carry the held-out report."""
    check_kind(kind)
    fit = fit or FitConfig()
    if kind == "matrix":
        return matrix_from_dataset(ds, fit)
    if kind == "latent":
        return latent_from_dataset(ds)
    from rayrec.envs.fitting import fit_response_model  # torch, only when a model is trained

    train, test = random_holdout(ds, test_frac=fit.test_frac, seed=fit.seed)
    model, _ = fit_response_model(train, test, kind=kind, **fit.to_dict())
    return model


def cached_response_model(
    dataset: str,
    kind: str = "mf",
    path: str | Path | None = None,
    dataset_path: str | Path | None = None,
    *,
    loader_options: dict[str, Any] | None = None,
    fit: FitConfig | None = None,
    data: Dataset | None = None,
) -> tuple[ResponseModel, Path]:
    """Load the response model from ``path`` (default: the keyed cache dir), building and saving it
    first if there is none, so every simulator command and the env config share one ground truth.

    ``data`` is the already loaded dataset (it must be what ``dataset``/``dataset_path``/
    ``loader_options`` load); without it the dataset is loaded only when a build is needed. Returns the
    model and its artifact directory. A model read from ``path`` must fit the dataset's sizes.
    """
    check_kind(kind)
    fit = fit or FitConfig()
    key = cache_key(dataset, kind, dataset_path, loader_options, fit)
    target = (
        Path(path)
        if path is not None
        else default_artifact_dir(dataset, kind, dataset_path, loader_options, fit)
    )
    if (target / "response.json").is_file():
        model = ResponseModel.load(target)
    else:
        ds = data if data is not None else load_dataset(dataset, dataset_path, **(loader_options or {}))
        model = build_response_model(ds, kind, fit)
        model.save(target, extra_meta={"cache_key": key})
        data = ds
    if data is not None and (model.n_users, model.n_items) != (data.n_users, data.n_items):
        raise AssetError(
            f"response model at {target} is for {model.n_users} users x {model.n_items} items, but "
            f"{dataset} has {data.n_users} x {data.n_items}; fit it on this dataset (drop --response)"
        )
    return model, target
