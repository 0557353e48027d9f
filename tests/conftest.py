"""Shared fixtures: a private cache, one Ray for the whole session (starting Ray costs ~4 s), GPU skipping.

Tests that need Ray take the ``ray_session`` fixture; pure-numpy tests never start it.

Cache: tests never write into the user's cache (``~/.cache/rayrec`` or their ``$RAYREC_HOME``). Before
any test imports rayrec, ``RAYREC_HOME`` points at a temporary directory for the whole session, in which
the already-fetched read-only assets (ml-100k, the SmolLM2 GGUF) appear as per-file symlinks into the
user's cache, so nothing is fetched again. Whatever tests write (fitted simulators, a re-fetched
asset: assets.py writes by os.replace, which replaces a symlink, never writes through it) lands in
the temporary directory, removed at the end. Ray workers (also named in ``ray_session``'s runtime_env)
and subprocesses (the console-script tests) inherit the variable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


def _private_home() -> Path:
    """A temporary RAYREC_HOME seeded with links to the user's fetched asset files."""
    user_home = Path(os.environ.get("RAYREC_HOME", Path.home() / ".cache" / "rayrec")).expanduser()
    home = Path(tempfile.mkdtemp(prefix="rayrec-test-home-"))
    from rayrec.assets import ASSETS, GROUPLENS_MARKER

    for asset in ASSETS.values():
        src = user_home / asset.name
        names = [f.name for f in asset.files]
        if (src / GROUPLENS_MARKER).exists():  # a hand-supplied GroupLens copy of ml-100k
            names = [p.name for p in src.iterdir() if p.is_file()]
        present = [n for n in names if (src / n).is_file()]
        if present:
            (home / asset.name).mkdir()
            for n in present:
                (home / asset.name / n).symlink_to((src / n).resolve())
    return home


TEST_RAYREC_HOME = _private_home()
os.environ["RAYREC_HOME"] = str(TEST_RAYREC_HOME)

# torch in the driver would otherwise take both cores and starve Ray's workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # torch missing is a setup problem elsewhere; here it just means "no GPU"
        return False


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(TEST_RAYREC_HOME, ignore_errors=True)  # removes the links, never their targets


@pytest.fixture(scope="session")
def rayrec_home() -> Path:
    """The session's private RAYREC_HOME (see the module docstring)."""
    return TEST_RAYREC_HOME


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (marked gpu); none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 4 logical CPUs on the 2-core box, so EnvRunners, a Serve replica and the
    driver fit at once (logical CPUs are only counters)."""
    import ray
    import torch

    torch.set_num_threads(1)
    ray.init(
        address="local",  # always a private Ray: never join a `ray start --head` left on the machine
        num_cpus=4,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
        ignore_reinit_error=True,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "RAYREC_HOME": str(TEST_RAYREC_HOME)}},
    )
    yield ray
    ray.shutdown()
