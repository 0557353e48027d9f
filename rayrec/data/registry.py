"""Datasets by name, so the CLI and configs can say ``ml-100k`` instead of a loader call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rayrec import assets
from rayrec.data.dataset import Dataset
from rayrec.data.kuairand import load_kuairand
from rayrec.data.kuairec import load_kuairec
from rayrec.data.movielens import load_movielens_100k
from rayrec.data.synthetic import make_world
from rayrec.data.tabular import load_table_dataset
from rayrec.errors import ConfigError


def _ml100k(path: str | Path | None = None, **options: object) -> Dataset:
    return load_movielens_100k(path if path is not None else assets.ensure("ml-100k"), **options)


def _needs_path(name: str, loader: Callable[..., Dataset], hint: str) -> Callable[..., Dataset]:
    """Wrap a loader of files that cannot be fetched here, so a missing --path says where to get them."""

    def load(path: str | Path | None = None, **options: object) -> Dataset:
        if path is None:
            raise ConfigError(f"dataset {name!r} needs --path: {hint}")
        return loader(path, **options)

    return load


def _synthetic(path: str | Path | None = None, **options: object) -> Dataset:
    if path is not None:
        raise ConfigError("the synthetic dataset is generated, not read: drop --path")
    return make_world(**options).dataset


# name -> loader(path or None, **options). Loaders of datasets that cannot be fetched here need a path.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "ml-100k": _ml100k,
    "kuairec": _needs_path(
        "kuairec",
        load_kuairec,
        "the data/ folder of KuaiRec 2.0 (small_matrix.csv, big_matrix.csv, item_categories.csv) "
        "from https://kuairec.com (in Python, matrix='big' loads the big matrix)",
    ),
    "kuairand": _needs_path(
        "kuairand",
        load_kuairand,
        "the data/ folder of KuaiRand-Pure (log_standard_*_pure.csv, video_features_basic_pure.csv) "
        "from https://kuairand.com (in Python, include_random=True adds the random-exposure log)",
    ),
    "csv": _needs_path(
        "csv",
        load_table_dataset,
        "a CSV/TSV/Parquet file with user,item[,rating][,timestamp] columns (in Python, columns={...} maps "
        "other names)",
    ),
    "synthetic": _synthetic,
}


def load_dataset(name: str, path: str | Path | None = None, **options: object) -> Dataset:
    """Load a dataset by name (``ml-100k`` …); ``path`` points at a local copy where one is needed and
    ``options`` go to the loader (``matrix="big"`` for KuaiRec, ``n_users=...`` for synthetic)."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None
    try:
        return loader(path, **options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ConfigError(
            f"dataset {name!r} does not take option(s) {sorted(options)} ({exc}); see its loader's docstring"
        ) from exc
