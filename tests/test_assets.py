"""The asset cache: checksums hold, supplying files by hand works, bad sources fail with a way out."""

from __future__ import annotations

import shutil
from pathlib import Path

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
