"""`rayrec planner up` user errors through the installed console entry point: one line, exit 2, no
traceback (the typer app called in-process could see neither)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RAYREC = str(Path(sys.executable).with_name("rayrec"))


@pytest.mark.parametrize(
    ("value", "says"),
    [("{bad", "is not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_bad_backend_kwargs_is_one_line_and_exit_code_2(value: str, says: str) -> None:
    proc = subprocess.run(
        [RAYREC, "planner", "up", "--backend-kwargs", value], capture_output=True, text=True, timeout=120
    )
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1 and out.startswith("error: --backend-kwargs") and says in out, out
