"""Shared fixtures: one Ray for the whole session (starting Ray costs ~4 s), and GPU-test skipping.

Tests that need Ray take the ``ray_session`` fixture; pure-numpy tests never start it.
"""

from __future__ import annotations

import os

import pytest

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
        num_cpus=4,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
        ignore_reinit_error=True,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()
