"""The asset cache: checksums hold, supplying files by hand works, bad sources fail with a way out."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rayrec import assets
from rayrec.errors import AssetError


@pytest.fixture()
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RAYREC_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def real_ml100k() -> Path:
    """The real cache (``make test`` fetches it first); module scope, so it resolves before any
    test points RAYREC_HOME elsewhere."""
    return assets.ensure("ml-100k")


def test_embedded_assets_verify() -> None:
    for name in assets.ASSETS:
        assets.ensure(name)
        assert set(assets.verify(name).values()) == {"ok"}


def test_fetch_from_directory_copies_and_checks(real_ml100k: Path, fresh_home: Path) -> None:
    source = real_ml100k
    assert not assets.is_ready("ml-100k")
    dest = assets.fetch("ml-100k", source=source)
    assert dest == fresh_home / "ml-100k"
    assert assets.verify("ml-100k") == {f.name: "ok" for f in assets.ML100K.files}


def test_corrupted_source_is_refused(real_ml100k: Path, fresh_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(real_ml100k, bad)
    with open(bad / "ml-100k.inter", "a") as fh:
        fh.write("1\t1\t5\t0\n")
    with pytest.raises(AssetError, match="sha256.*ml-100k.inter"):
        assets.fetch("ml-100k", source=bad)


def test_corrupted_cache_is_reported(real_ml100k: Path, fresh_home: Path) -> None:
    assets.fetch("ml-100k", source=real_ml100k)
    (fresh_home / "ml-100k" / "ml-100k.user").write_text("tampered\n")
    assert assets.verify("ml-100k")["ml-100k.user"] == "checksum mismatch"
    assert not assets.is_ready("ml-100k")


def test_missing_source_and_unknown_asset_say_what_to_do(fresh_home: Path, tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="does not exist.*rayrec assets fetch ml-100k --from"):
        assets.fetch("ml-100k", source=tmp_path / "nowhere")
    with pytest.raises(AssetError, match="unknown asset 'nope'; known assets: ml-100k, smollm2-135m"):
        assets.fetch("nope")


def test_wrong_wheel_is_refused(fresh_home: Path, tmp_path: Path) -> None:
    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    wheel.write_bytes(b"not a wheel")
    with pytest.raises(AssetError, match="does not match the pinned sha256 of recbole==1.2.1"):
        assets.fetch("ml-100k", source=wheel)


def test_grouplens_directory_is_accepted(fresh_home: Path, tmp_path: Path) -> None:
    gl = tmp_path / "ml-100k-grouplens"
    gl.mkdir()
    for name in ("u.data", "u.item", "u.user", "u.genre"):
        (gl / name).write_text("")
    assets.fetch("ml-100k", source=gl)
    assert assets.verify("ml-100k") == {"u.data": "ok (grouplens)"}
    (gl / "u.genre").unlink()
    with pytest.raises(AssetError, match="lacks u.genre"):
        assets.fetch("ml-100k", source=gl)


# --- several processes fetching one asset at once ---------------------------------------------------

N_PROCESSES = 6
BLOB_MEMBERS = {"a.bin": 3 << 20, "b.bin": 2 << 20, "c.bin": 1 << 20}


def _blob_asset(wheel: Path) -> assets.Asset:
    """An asset whose wheel and files this test writes itself (no network, pinned by their sha256)."""
    files = []
    with zipfile.ZipFile(wheel) as zf:
        for name in BLOB_MEMBERS:
            files.append(
                assets.AssetFile(name, f"blob/{name}", hashlib.sha256(zf.read(f"blob/{name}")).hexdigest())
            )
    return assets.Asset(
        name="test-blob",
        description="random bytes for the concurrency test",
        wheel="test-blob==0",
        wheel_sha256=assets.sha256_of(wheel),
        files=tuple(files),
        manual_hint="none",
    )


def _fetch_in_process(home: str, wheel: str, barrier, results) -> None:  # noqa: ANN001 (mp objects)
    os.environ["RAYREC_HOME"] = home
    asset = _blob_asset(Path(wheel))
    assets.ASSETS[asset.name] = asset
    barrier.wait()
    try:
        assets.fetch(asset.name, source=wheel, force=True)
        results.put(("ok", assets.verify(asset.name)))
    except Exception as exc:  # report, so the parent can say which process failed and how
        results.put(("error", repr(exc)))


def test_concurrent_fetches_of_one_asset_all_succeed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wheel = tmp_path / "test_blob-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, size in BLOB_MEMBERS.items():
            zf.writestr(f"blob/{name}", rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(N_PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_fetch_in_process, args=(str(home), str(wheel), barrier, results))
        for _ in range(N_PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert outcomes == [("ok", {name: "ok" for name in BLOB_MEMBERS})] * N_PROCESSES, outcomes
    assert sorted(p.name for p in (home / "test-blob").iterdir()) == sorted(BLOB_MEMBERS)  # no temp left
    expected = _blob_asset(wheel)
    for f in expected.files:
        assert assets.sha256_of(home / "test-blob" / f.name) == f.sha256
