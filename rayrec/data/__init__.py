"""Datasets, item catalog, splits and synthetic worlds. Imports nothing else of rayrec's but errors/assets."""

from rayrec.data.dataset import Dataset, build_dataset
from rayrec.data.registry import DATASETS, load_dataset
from rayrec.data.splits import Split, leave_last_out, random_holdout, temporal

__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "build_dataset",
    "leave_last_out",
    "load_dataset",
    "random_holdout",
    "temporal",
]
