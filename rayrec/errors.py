"""One exception family, so callers (the CLI, HTTP endpoints) can tell user errors from bugs.

Every message says what went wrong *and* what to do about it; the CLI prints it without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class RayrecError(Exception):
    """Base of every error rayrec raises on purpose."""


class ConfigError(RayrecError):
    """A setting or argument that cannot work (unknown name, out-of-range value)."""


class AssetError(RayrecError):
    """A cached dataset or model file is missing, cannot be fetched or fails its checksum."""


class DataError(RayrecError):
    """Malformed input data. Names the file, and the line and column where they are known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
