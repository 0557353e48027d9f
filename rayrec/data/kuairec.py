"""KuaiRec 2.0 (Gao et al., CIKM 2022): short-video views, from the published file layout.

``small_matrix.csv`` is the fully observed block (1,411 users x 3,327 videos), the ground truth the
simulator can use directly; ``big_matrix.csv`` is the sparse log around it. Both have the columns
``user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio``;
``item_categories.csv`` has ``video_id,feat`` with ``feat`` a list literal such as ``[8]`` or ``[27, 9]``.

Rating is ``watch_ratio`` (play_duration / video_duration, > 1 when the video is replayed): it is the
relevance signal KuaiRec's authors and the simulators built on it (KuaiSim, DORL) use, whereas there is
no explicit rating. Consumers that need a binary reward threshold it (a common cut is 2.0).

A few rows of the real matrices carry no ``timestamp``; those fall back to midnight of ``date``, and
rows with neither are dropped and counted in ``meta['dropped_no_time']`` rather than failing the load.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from rayrec.data.dataset import Dataset, build_dataset, multi_hot
from rayrec.data.readers import read_table
from rayrec.errors import ConfigError, DataError

MATRICES = {"small": "small_matrix.csv", "big": "big_matrix.csv"}
_FEAT = re.compile(r"^\[\s*(\d+(?:\s*,\s*\d+)*)?\s*\]$")


def load_kuairec(directory: str | Path, matrix: str = "small") -> Dataset:
    """Load KuaiRec 2.0 from ``directory`` (the ``data/`` folder of the release)."""
    if matrix not in MATRICES:
        raise ConfigError(f"KuaiRec matrix must be one of {sorted(MATRICES)}, not {matrix!r}")
    directory = Path(directory)
    path = directory / MATRICES[matrix]
    inter = read_table(
        path,
        columns={
            "user_id": "int",
            "video_id": "int",
            "watch_ratio": "float",
            "timestamp": "str",
            "date": "str",
        },
    )
    timestamp, dropped = _timestamps(inter["timestamp"], inter["date"], path)
    keep = timestamp >= 0
    item_ids, categories, names = read_item_categories(directory / "item_categories.csv")
    return build_dataset(
        f"kuairec-{matrix}",
        pd.DataFrame(
            {
                "user": inter["user_id"].to_numpy()[keep],
                "item": inter["video_id"].to_numpy()[keep],
                "rating": inter["watch_ratio"].to_numpy()[keep],
                "timestamp": timestamp[keep],
            }
        ),
        item_ids=item_ids,
        categories=categories,
        category_names=names,
        user_ids=np.unique(inter["user_id"].to_numpy()),  # a user whose rows were all dropped stays listed
        meta={"source": str(path), "rating": "watch_ratio", "dropped_no_time": dropped},
    )


def _timestamps(timestamp: pd.Series, date: pd.Series, path: Path) -> tuple[np.ndarray, int]:
    """Epoch seconds per row (``timestamp``, else midnight of ``date``); ``-1`` where neither is given."""
    ts_text, date_text = timestamp.str.strip(), date.str.strip()
    ts = pd.to_numeric(ts_text, errors="coerce")
    _raise_first_bad(ts.isna() & (ts_text != ""), timestamp, "epoch seconds", path, "timestamp")
    day = pd.to_datetime(date_text, format="%Y%m%d", errors="coerce")
    _raise_first_bad(day.isna() & (date_text != ""), date, "a YYYYMMDD date", path, "date")
    day_seconds = (day - pd.Timestamp(0)) // pd.Timedelta(seconds=1)
    seconds = np.floor(ts.fillna(day_seconds).to_numpy(dtype=float, na_value=np.nan))
    missing = np.isnan(seconds)
    return np.where(missing, -1, seconds).astype(np.int64), int(missing.sum())


def _raise_first_bad(bad: pd.Series, values: pd.Series, expected: str, path: Path, column: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"expected {expected}, got {values.iloc[row]!r}", path=path, line=row + 2, column=column
        )


def read_item_categories(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw video ids, their multi-hot tags and the tag names (``tag<k>``, k the published tag id)."""
    items = read_table(path, columns={"video_id": "int", "feat": "str"})
    tags: list[list[int]] = []
    for row, feat in enumerate(items["feat"]):
        m = _FEAT.match(feat.strip())
        if m is None:
            raise DataError(
                f"expected a list of tag ids such as [8] or [27, 9], got {feat!r}",
                path=path,
                line=row + 2,
                column="feat",
            )
        tags.append([int(t) for t in m.group(1).split(",")] if m.group(1) else [])
    return items["video_id"].to_numpy(), *multi_hot(tags)
