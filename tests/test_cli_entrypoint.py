"""User errors through the installed ``rayrec`` console script: exit 2, one line, never a traceback.

These run the real entry point in a subprocess (``pip install -e .`` puts it next to the interpreter),
because only there are the exit code and the printed traceback what a user sees. Each case stops
before any heavy work, so a spawn costs about a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rayrec.cli import LAZY_COMMANDS, _user_error, load_command
from rayrec.errors import ConfigError

RAYREC = Path(sys.executable).parent / "rayrec"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    assert RAYREC.exists(), f"{RAYREC} missing: install the package with `pip install -e .` (make does)"
    return subprocess.run([str(RAYREC), *args], capture_output=True, text=True, timeout=120)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 2, shown
    assert "Traceback" not in shown, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    for needle in needles:
        assert needle in lines[0], shown


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["data", "info", "no-such-set"], ["unknown dataset 'no-such-set'", "ml-100k"]),
        (["data", "split", "ml-100k", "--split", "leave-last-out"], ["--split", "leave_last_out, temporal"]),
        (["data", "info", "ml-100k", "--option", "n_users"], ["--option takes key=value", "'n_users'"]),
        (["data", "info", "ml-100k", "--option", "matrix=big"], ["does not take option", "matrix"]),
        (["data", "split", "ml-100k", "--n-test", "one"], ["--n-test", "rayrec data split --help"]),
        (["demo", "--episodes", "many"], ["--episodes"]),
        (["demo", "--episodes", "0"], ["--episodes", "greater than or equal to 1"]),
        (["simulatee"], ["No such command 'simulatee'", "simulate"]),
        (["assets", "fetch", "no-such-asset"], ["unknown asset 'no-such-asset'", "smollm2-135m"]),
    ],
)
def test_user_errors_exit_2_with_one_line(args: list[str], needles: list[str]) -> None:
    assert_user_error(run_cli(*args), *needles)


def test_missing_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ratings.csv"
    assert_user_error(run_cli("data", "info", "csv", "--path", str(missing)), str(missing))
    assert_user_error(run_cli("assets", "fetch", "ml-100k", "--from", str(tmp_path / "nope")), "nope")


def test_help_lists_every_command_without_loading_the_layers() -> None:
    """`rayrec --help` stays fast: it imports neither torch, Ray nor pandas."""
    code = (
        "import sys\nfrom rayrec.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('LOADED', sorted(m for m in ('torch', 'ray', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout
    for name in LAZY_COMMANDS:
        assert name in proc.stdout
    bare = run_cli()  # no arguments: the same help, not an error
    assert bare.returncode == 0 and "simulate" in bare.stdout, bare.stdout + bare.stderr


def test_every_listed_command_loads() -> None:
    """A lazy entry that names a moved module or attribute fails here, not in a user's hands."""
    for name, (_, _, summary) in LAZY_COMMANDS.items():
        cmd = load_command(name)
        assert cmd.name == name and summary and cmd.help, name


def test_remote_user_errors_are_unwrapped() -> None:
    """A RayrecError raised inside a Ray task reaches the CLI wrapped; it must still print as one line."""
    from ray.exceptions import RayTaskError

    cause = ConfigError("bad setting; use another")
    wrapped = RayTaskError("f", "Traceback ...\nConfigError: bad setting", cause).as_instanceof_cause()
    assert _user_error(wrapped) is cause
    assert _user_error(ValueError("a bug")) is None
