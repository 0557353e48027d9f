"""Any interaction log in CSV/TSV or Parquet, given which columns hold user, item, rating and time.

This is the way in for datasets rayrec has no dedicated loader for. Without a mapping the columns
``user`` and ``item`` are required and ``rating`` / ``timestamp`` are used when present; with a mapping,
every column it names is required. A missing rating means implicit feedback (1.0); a missing
timestamp means the file's row order is the time order.

An optional item file adds the catalog: ids, titles and categories given as one text column of
separated names (``Action|Comedy``). For Parquet, the "line" in an error is the 1-based row.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rayrec.data.dataset import Dataset, build_dataset
from rayrec.data.readers import parse_columns
from rayrec.errors import ConfigError, DataError

# field -> kind; ids stay text so "007" and "7" remain different items, as in the source.
FIELDS = {"user": "id", "item": "id", "rating": "float", "timestamp": "int"}
ITEM_FIELDS = {"item": "id", "title": "str", "categories": "str"}
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_table_dataset(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    items_path: str | Path | None = None,
    item_columns: Mapping[str, str] | None = None,
    category_sep: str = "|",
    sep: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Load interactions from ``path`` (and a catalog from ``items_path``).

    columns: dataset field (user, item, rating, timestamp) -> column name in the file.
    item_columns: field (item, title, categories) -> column name in the item file; default: the
        fields' own names, ``item`` required and the others used when present.
    sep: CSV delimiter; by default tab for ``.tsv`` files and comma otherwise.
    """
    path = Path(path)
    frame, first_line, header_line = _read_frame(path, sep)
    mapping = _mapping(columns, FIELDS, frame.columns, required=("user", "item"))
    parsed = parse_columns(
        frame,
        {col: FIELDS[field] for field, col in mapping.items()},
        path=path,
        first_line=first_line,
        header_line=header_line,
    )
    inter = pd.DataFrame(
        {
            "user": parsed[mapping["user"]].astype(str).to_numpy(),
            "item": parsed[mapping["item"]].astype(str).to_numpy(),
            "rating": parsed[mapping["rating"]].to_numpy() if "rating" in mapping else 1.0,
            "timestamp": parsed[mapping["timestamp"]].to_numpy()
            if "timestamp" in mapping
            else np.arange(len(frame)),
        }
    )
    catalog = {} if items_path is None else _read_catalog(Path(items_path), item_columns, category_sep, sep)
    return build_dataset(
        name or path.stem,
        inter,
        **catalog,
        meta={"source": str(path), "columns": mapping, "implicit": "rating" not in mapping},
    )


def _read_frame(path: Path, sep: str | None) -> tuple[pd.DataFrame, int, int | None]:
    """The file as a frame, the line number of its first row and of its header (None for Parquet)."""
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.stat().st_size == 0:
        raise DataError("file is empty; expected a header line and data rows", path=path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
            raise DataError(f"not a readable Parquet file ({exc})", path=path) from exc
        first_line, header_line = 1, None
    else:
        delimiter = sep or ("\t" if path.suffix.lower() == ".tsv" else ",")
        try:
            frame = pd.read_csv(
                path, sep=delimiter, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL
            )
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot parse as {delimiter!r}-separated UTF-8 text: {exc}", path=path) from exc
        frame.columns = [c.strip() for c in frame.columns]
        first_line, header_line = 2, 1
    if len(frame) == 0:
        raise DataError("no data rows", path=path, line=first_line)
    return frame, first_line, header_line


def _mapping(
    columns: Mapping[str, str] | None, fields: Mapping[str, str], present: pd.Index, required: tuple[str, ...]
) -> dict[str, str]:
    """field -> column: the given mapping (checked), or the fields' own names where the file has them."""
    if columns is None:
        return {f: f for f in fields if f in required or f in present}
    unknown = sorted(set(columns) - set(fields))
    if unknown:
        raise ConfigError(f"unknown field(s) {unknown} in the column mapping; known fields: {list(fields)}")
    lacking = [f for f in required if f not in columns]
    if lacking:
        raise ConfigError(f"the column mapping must name the column of {lacking}")
    return dict(columns)


def _read_catalog(
    path: Path, item_columns: Mapping[str, str] | None, category_sep: str, sep: str | None
) -> dict[str, object]:
    """build_dataset's catalog arguments from an item file."""
    frame, first_line, header_line = _read_frame(path, sep)
    mapping = _mapping(item_columns, ITEM_FIELDS, frame.columns, required=("item",))
    parsed = parse_columns(
        frame,
        {col: "str" for col in mapping.values()},
        path=path,
        first_line=first_line,
        header_line=header_line,
    )
    catalog: dict[str, object] = {"item_ids": parsed[mapping["item"]].astype(str).to_numpy()}
    if "title" in mapping:
        catalog["item_titles"] = parsed[mapping["title"]].astype(str).to_numpy(dtype=object)
    if "categories" in mapping:
        cells = [
            [t.strip() for t in str(v).split(category_sep) if t.strip()]
            for v in parsed[mapping["categories"]]
        ]
        names = sorted({t for row in cells for t in row})
        index = {t: k for k, t in enumerate(names)}
        categories = np.zeros((len(cells), len(names)), dtype=bool)
        for row, tokens in enumerate(cells):
            categories[row, [index[t] for t in tokens]] = True
        catalog["categories"] = categories
        catalog["category_names"] = names
    return catalog
