"""Datasets by name, so the CLI and configs can say ``ml-100k`` instead of a loader call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rayrec import assets
from rayrec.data.dataset import Dataset
from rayrec.data.movielens import load_movielens_100k
from rayrec.errors import ConfigError


def _ml100k(path: str | Path | None = None) -> Dataset:
    return load_movielens_100k(path if path is not None else assets.ensure("ml-100k"))


# name -> loader(path or None). Loaders of datasets that cannot be fetched here need a path.
DATASETS: dict[str, Callable[..., Dataset]] = {"ml-100k": _ml100k}


def load_dataset(name: str, path: str | Path | None = None) -> Dataset:
    """Load a dataset by name (``ml-100k`` …); ``path`` points at a local copy where one is needed."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None
    return loader(path) if path is not None else loader()
