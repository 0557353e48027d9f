"""Datasets, item catalog, splits and synthetic worlds.

Imports nothing else of rayrec's but the leaf utilities (errors, assets, popularity).
"""

from rayrec.data.dataset import Dataset, build_dataset
from rayrec.data.filters import FilterReport, compact, k_core
from rayrec.data.imbalance import long_tail_imbalance
from rayrec.data.kuairand import load_kuairand
from rayrec.data.kuairec import load_kuairec
from rayrec.data.movielens import load_movielens_100k
from rayrec.data.registry import DATASETS, load_dataset
from rayrec.data.relevance import default_relevance
from rayrec.data.splits import (
    SPLITS,
    Split,
    check_split_name,
    leave_last_out,
    random_holdout,
    split_dataset,
    temporal,
)
from rayrec.data.synthetic import SyntheticConfig, SyntheticWorld, make_world
from rayrec.data.tabular import load_table_dataset

__all__ = [
    "DATASETS",
    "SPLITS",
    "Dataset",
    "FilterReport",
    "Split",
    "SyntheticConfig",
    "SyntheticWorld",
    "build_dataset",
    "check_split_name",
    "compact",
    "default_relevance",
    "k_core",
    "leave_last_out",
    "load_dataset",
    "load_kuairand",
    "load_kuairec",
    "load_movielens_100k",
    "load_table_dataset",
    "long_tail_imbalance",
    "make_world",
    "random_holdout",
    "split_dataset",
    "temporal",
]
