"""KuaiRand-Pure (Gao et al., CIKM 2022): short-video logs with randomly exposed items, from the
published file layout.

Interactions come from ``log_standard_*_pure.csv`` (``user_id,video_id,date,hourmin,time_ms,is_click,
is_like,...,play_time_ms,duration_ms,...``); ``include_random=True`` adds ``log_random_*_pure.csv``, the
randomly exposed videos, which are an unbiased test set and should normally stay out of training.
The catalog and its categories come from ``video_features_basic_pure.csv`` (``video_id,...,tag``) where
``tag`` is ``8`` or ``8,27`` and may be empty (an item with no category).

Rating is ``is_click`` (0/1): every logged row is an exposure, so a click is the relevance signal.
Timestamps are seconds (``time_ms // 1000``) like every other dataset; rows are first ordered by
``time_ms`` so that interactions within one second keep their true order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rayrec.data.dataset import Dataset, build_dataset, multi_hot
from rayrec.data.readers import read_table
from rayrec.errors import DataError

ITEM_FILE = "video_features_basic_pure.csv"


def load_kuairand(directory: str | Path, include_random: bool = False) -> Dataset:
    """Load KuaiRand-Pure from ``directory`` (the ``data/`` folder of the release)."""
    directory = Path(directory)
    logs = sorted(directory.glob("log_standard_*_pure.csv"))
    if include_random:
        logs += sorted(directory.glob("log_random_*_pure.csv"))
    if not logs:
        raise DataError(
            "no KuaiRand-Pure logs here: expected log_standard_*_pure.csv; pass the release's data/ folder",
            path=directory,
        )
    parts = [
        read_table(path, columns={"user_id": "int", "video_id": "int", "time_ms": "int", "is_click": "int"})
        for path in logs
    ]
    log = pd.concat(parts, ignore_index=True).sort_values("time_ms", kind="stable")
    item_ids, categories, names = _read_items(directory / ITEM_FILE)
    return build_dataset(
        "kuairand-pure",
        pd.DataFrame(
            {
                "user": log["user_id"],
                "item": log["video_id"],
                "rating": log["is_click"],
                "timestamp": log["time_ms"] // 1000,
            }
        ),
        item_ids=item_ids,
        categories=categories,
        category_names=names,
        meta={"source": str(directory), "rating": "is_click", "logs": [p.name for p in logs]},
    )


def _read_items(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    items = read_table(path, columns={"video_id": "int", "tag": "str"})
    tags: list[list[int]] = []
    for row, tag in enumerate(items["tag"]):
        tokens = [t.strip() for t in tag.split(",") if t.strip()]
        if not all(t.isdigit() for t in tokens):
            raise DataError(
                f"expected comma-separated tag ids such as 8 or 8,27 (or nothing), got {tag!r}",
                path=path,
                line=row + 2,
                column="tag",
            )
        tags.append([int(t) for t in tokens])
    return items["video_id"].to_numpy(), *multi_hot(tags)
