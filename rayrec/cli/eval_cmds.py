"""``rayrec evaluate-baselines``: the offline ranking table every later method is compared with."""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.algorithms.baselines import BASELINES
from rayrec.algorithms.evaluation import evaluate_ranking
from rayrec.cli.console import console, render_comparison
from rayrec.data import leave_last_out, load_dataset, temporal
from rayrec.errors import ConfigError
from rayrec.eval.plots import metric_bars
from rayrec.rundir import RunDir

PLOTTED = ("HR@{k}", "NDCG@{k}", "ILD@{k}", "coverage", "tail_share", "novelty", "gini", "cat_entropy")


def run_baselines(
    dataset: str, path: Path | None, split: str, k: int, seed: int, out: Path, run_name: str = "baselines"
) -> tuple[dict[str, dict[str, float]], RunDir]:
    """Fit every baseline on the split's train part, rank the full catalog, write the run directory."""
    ds = load_dataset(dataset, path)
    if split == "leave-last-out":
        parts = leave_last_out(ds)
    elif split == "temporal":
        parts = temporal(ds)
    else:
        raise ConfigError(f"--split must be leave-last-out or temporal, not {split!r}")
    run = RunDir(out, f"{run_name}-{dataset}", {"dataset": dataset, "split": split, "k": k}, seed)
    results = {}
    for name, cls in BASELINES.items():
        rec = cls(seed=seed) if name == "random" else cls()
        results[name] = evaluate_ranking(rec.fit(parts.train), parts, k=k, progress=True)
    run.write_json("metrics.json", results)
    metric_bars(results, [m.format(k=k) for m in PLOTTED], run.file("baselines.png"), f"{dataset} baselines")
    return results, run


def evaluate_baselines(
    dataset: str = typer.Argument("ml-100k", help="dataset name"),
    path: Path = typer.Option(None, "--path", help="local copy of the dataset, where the name needs one"),
    split: str = typer.Option("leave-last-out", help="leave-last-out | temporal"),
    k: int = typer.Option(10, help="list length"),
    seed: int = typer.Option(0, help="seed of the random recommender"),
    out: Path = typer.Option(Path("runs"), help="root of the run directories"),
) -> None:
    """Popularity and random recommenders: accuracy, diversity and novelty at k, as a table and a plot."""
    results, run = run_baselines(dataset, path, split, k, seed, out)
    console.print(
        render_comparison(f"{dataset} · {split} · full-catalog ranking, seen items excluded", results)
    )
    console.print(f"run directory: {run.path}")
