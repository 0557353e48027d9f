"""``rayrec data info|split``: look at a dataset and write splits as parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, render_table
from rayrec.cli.options import DATASET_ARG, OPTION_OPT, PATH_OPT, check_choice, parse_key_values

__all__ = ["OPTION_OPT", "data_app"]  # OPTION_OPT: re-exported for older imports

data_app = typer.Typer(help="Datasets: summary statistics and train/valid/test splits.", no_args_is_help=True)

@data_app.command("info")
def info(dataset: str = DATASET_ARG, path: Path = PATH_OPT, option: list[str] = OPTION_OPT) -> None:
    """Users, items, interactions, density and categories of a dataset."""
    from rayrec.data import load_dataset  # lazy: pandas only when a command runs

    ds = load_dataset(dataset, path, **parse_key_values(option, "--option", "n_users=1000"))
    console.print(
        render_table(f"dataset {dataset}", [{"field": k, "value": v} for k, v in ds.summary().items()])
    )
    pop = ds.categories.sum(0)
    cats = sorted(zip(ds.category_names, pop), key=lambda x: -x[1])
    console.print(render_table("items per category", [{"category": c, "items": int(n)} for c, n in cats]))


@data_app.command("split")
def split(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    split: str = typer.Option("leave_last_out", help="leave_last_out | temporal (rayrec.data.SPLITS)"),
    n_valid: int = typer.Option(1, help="leave_last_out: interactions per user for validation"),
    n_test: int = typer.Option(1, help="leave_last_out: interactions per user for test"),
    valid_frac: float = typer.Option(0.1, help="temporal: share of (latest) interactions for validation"),
    test_frac: float = typer.Option(0.1, help="temporal: share of latest interactions for test"),
    out: Path = typer.Option(Path("runs/splits"), help="directory for train/valid/test parquet files"),
) -> None:
    """Split a dataset and write ``train|valid|test.parquet`` (internal ids) under ``--out``."""
    from rayrec.data import SPLITS, load_dataset, split_dataset

    check_choice(split, tuple(SPLITS), "--split")  # before loading: a typo should not cost a dataset load
    options = parse_key_values(option, "--option", "n_users=1000")
    ds = load_dataset(dataset, path, **options)
    split_options = (
        {"n_valid": n_valid, "n_test": n_test}
        if split == "leave_last_out"
        else {"valid_frac": valid_frac, "test_frac": test_frac}
    )
    parts = split_dataset(ds, split, split_options)
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):
        getattr(parts, part).interactions.to_parquet(out / f"{part}.parquet", index=False)
    rows = [
        {"part": k, "interactions": v, "file": str(out / f"{k}.parquet")} for k, v in parts.sizes().items()
    ]
    console.print(render_table(f"{dataset} split ({split})", rows))
