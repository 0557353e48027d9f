"""Run directories: every command that produces results writes config, versions, seed and metrics
next to its artefacts, so a number in a table can always be traced back to how it was made."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("rayrec", "ray", "torch", "numpy", "pandas", "gymnasium", "transformers")


def versions() -> dict[str, str]:
    """Python, platform, key package versions and the git commit of the working tree, when there is one."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        out["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["git_commit"] = "unknown"
    return out


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


class RunDir:
    """``runs/<name>-<timestamp>/`` holding config.json, versions.json, metrics.json and plots."""

    def __init__(self, root: str | Path, name: str, config: dict[str, Any], seed: int) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = Path(root) / f"{name}-{stamp}"
        suffix = 1
        while self.path.exists():
            suffix += 1
            self.path = Path(root) / f"{name}-{stamp}-{suffix}"
        self.path.mkdir(parents=True)
        self.write_json("config.json", {"name": name, "seed": seed, **config})
        self.write_json("versions.json", versions())

    def write_json(self, filename: str, data: Any) -> Path:
        target = self.path / filename
        target.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
        return target

    def file(self, filename: str) -> Path:
        return self.path / filename
