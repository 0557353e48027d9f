"""The test session's private RAYREC_HOME (tests/conftest.py): tests never write into the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

from rayrec import assets


def test_cache_is_private_and_seeded(rayrec_home: Path) -> None:
    assert assets.cache_dir() == rayrec_home
    assert rayrec_home.resolve() != (Path.home() / ".cache" / "rayrec").resolve()
    # the fetched assets are there without a second fetch: links into the user's cache
    links = list((rayrec_home / "ml-100k").iterdir())
    assert links and all(p.is_symlink() and p.resolve().parent != p.parent for p in links)
    assert assets.is_ready("ml-100k")


def test_ray_workers_see_the_same_home(ray_session, rayrec_home: Path) -> None:
    @ray_session.remote(num_cpus=0)
    def home_in_worker() -> tuple[str | None, str]:
        from rayrec import assets as worker_assets

        return os.environ.get("RAYREC_HOME"), str(worker_assets.cache_dir())

    env, cache = ray_session.get(home_in_worker.remote())
    assert env == str(rayrec_home) and cache == str(rayrec_home)
