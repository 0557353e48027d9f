"""Validated reading of delimited files: every failure names the file, the line and the column.

Loaders build on :func:`read_table` instead of calling pandas directly, so a malformed file never
turns into a NaN that silently disappears further down.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rayrec.errors import DataError

# Column kinds a loader may ask for: "int" and "float" are parsed and checked, "id" is text that must not
# be empty (an empty id would silently merge unrelated rows), "str" is kept as is.
KINDS = ("int", "float", "id", "str")


def read_table(
    path: str | Path,
    *,
    columns: Mapping[str, str],
    sep: str = ",",
    names: Sequence[str] | None = None,
    optional: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    strip_type_suffix: bool = False,
) -> pd.DataFrame:
    """Read ``path`` and return the requested columns, parsed to their kinds.

    columns: required column -> kind. A missing column raises with the header line named.
    names: column names for a file without a header line (GroupLens' ``u.data``); else the first
        line is the header.
    optional: column -> kind, parsed when present.
    strip_type_suffix: RecBole atomic files name columns ``user_id:token``; drop the ``:token`` part.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.stat().st_size == 0:
        raise DataError("file is empty; expected a header line and data rows", path=path)
    header = names is None
    wanted = {*columns, *(optional or {})}
    seen: list[str] = []

    def keep(name: str) -> bool:
        # read only the requested columns: big logs (KuaiRec's 12.5M rows) carry many we never use
        name = _clean(name, strip_type_suffix)
        seen.append(name)
        return name in wanted

    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            names=None if header else list(names),
            usecols=keep,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE if sep in ("\t", "|") else csv.QUOTE_MINIMAL,
            encoding=encoding,
            engine="c" if len(sep) == 1 else "python",
        )
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot parse: {exc}", path=path) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError("file has no columns", path=path, line=1) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"not {encoding} text ({exc.reason}); pass the right encoding", path=path) from exc
    df.columns = [_clean(c, strip_type_suffix) for c in df.columns]
    first_data_line = 2 if header else 1
    if len(df) == 0:
        raise DataError("file has a header but no data rows", path=path, line=first_data_line)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {missing}; found {seen}",
            path=path,
            line=1 if header else None,
            column=missing[0],
        )
    return parse_columns(
        df,
        columns,
        optional=optional,
        path=path,
        first_line=first_data_line,
        header_line=1 if header else None,
    )


def _clean(name: str, strip_type_suffix: bool) -> str:
    return (name.split(":", 1)[0] if strip_type_suffix else name).strip()


def parse_columns(
    df: pd.DataFrame,
    columns: Mapping[str, str],
    *,
    path: str | Path,
    first_line: int,
    header_line: int | None,
    optional: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Check and parse the requested columns of an already-read frame (CSV text or typed Parquet).

    Shared by :func:`read_table` and the Parquet reader so both report bad values the same way: the
    file, the line (``first_line`` + row) and the column.
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {missing}; found {list(df.columns)}",
            path=path,
            line=header_line,
            column=missing[0],
        )
    wanted = dict(columns)
    for col, kind in (optional or {}).items():
        if col in df.columns:
            wanted[col] = kind
    out = {}
    for col, kind in wanted.items():
        out[col] = _parse_column(df[col], kind, path=Path(path), column=col, first_line=first_line)
    return pd.DataFrame(out)


def _parse_column(values: pd.Series, kind: str, *, path: Path, column: str, first_line: int) -> pd.Series:
    if kind not in KINDS:
        raise ValueError(f"unknown column kind {kind!r}")
    if kind == "str":
        return values
    if kind == "id":
        empty = (values.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise DataError("empty id; every row needs one", path=path, line=first_line + row, column=column)
        return values
    if pd.api.types.is_numeric_dtype(values.dtype):
        parsed = values.astype(np.float64)
    else:
        parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    bad = parsed.isna().to_numpy() | ~np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"expected a {'number' if kind == 'float' else 'whole number'}, got {values.iloc[row]!r} "
            f"({int(bad.sum())} bad value(s) in this column)",
            path=path,
            line=first_line + row,
            column=column,
        )
    if kind == "int":
        arr = parsed.to_numpy(dtype=float)
        frac = arr != np.floor(arr)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise DataError(
                f"expected a whole number, got {values.iloc[row]!r}",
                path=path,
                line=first_line + row,
                column=column,
            )
        return pd.Series(arr.astype(np.int64), index=values.index)
    return parsed.astype(np.float64)
