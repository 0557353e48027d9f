"""``rayrec demo``: the main job on the embedded defaults, what ``make demo`` runs."""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, render_comparison
from rayrec.cli.eval_cmds import run_baselines


def demo(out: Path = typer.Option(Path("runs"), help="root of the run directories")) -> None:
    """Offline baselines on MovieLens-100K (the table LAAC is later compared with)."""
    console.rule("[bold]rayrec demo · offline baselines on ml-100k")
    results, run = run_baselines("ml-100k", None, "leave-last-out", 10, 0, out)
    console.print(render_comparison("ml-100k · leave-last-out · k=10", results))
    console.print(f"run directory: {run.path} (config.json, versions.json, metrics.json, baselines.png)")
