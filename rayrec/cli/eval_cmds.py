"""``rayrec evaluate-baselines``: the offline ranking table every later method is compared with.

Only option parsing and printing live here; the work is ``rayrec.algorithms.baselines.run_baselines``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, render_comparison
from rayrec.cli.options import DATASET_ARG, OPTION_OPT, PATH_OPT, check_choice, parse_key_values
from rayrec.errors import ConfigError

# Split name -> the options of that split (the keyword arguments of rayrec.data's function).
SPLIT_OPTIONS = {"leave_last_out": ("n_valid", "n_test"), "temporal": ("valid_frac", "test_frac")}


def evaluate_baselines(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    split: str = typer.Option("leave_last_out", help=" | ".join(SPLIT_OPTIONS)),
    n_valid: int = typer.Option(None, help="leave_last_out: interactions per user for validation [1]"),
    n_test: int = typer.Option(None, help="leave_last_out: interactions per user for test [1]"),
    valid_frac: float = typer.Option(
        None, help="temporal: share of (latest) interactions for validation [0.1]"
    ),
    test_frac: float = typer.Option(None, help="temporal: share of latest interactions for test [0.1]"),
    relevance: str = typer.Option(
        None,
        help="which test rows are relevant: all | rating>=X (default: the dataset's; all for ml-100k and "
        "csv, rating>=1 (a click) for kuairand, rating>=2 (watch ratio) for kuairec)",
    ),
    head_fraction: float = typer.Option(
        0.2, help="share of items (most popular in train) that form the head; the rest is the long tail"
    ),
    k: int = typer.Option(10, help="list length"),
    seed: int = typer.Option(0, help="seed of the random recommender"),
    out: Path = typer.Option(Path("runs"), help="root of the run directories"),
) -> None:
    """Popularity and random recommenders: accuracy, diversity and novelty at k, as a table and a plot."""
    check_choice(split, tuple(SPLIT_OPTIONS), "--split")
    given = {"n_valid": n_valid, "n_test": n_test, "valid_frac": valid_frac, "test_frac": test_frac}
    given = {name: value for name, value in given.items() if value is not None}
    wrong = sorted(set(given) - set(SPLIT_OPTIONS[split]))
    if wrong:
        flags = ", ".join("--" + name.replace("_", "-") for name in wrong)
        raise ConfigError(f"{flags} do(es) not apply to the {split} split; drop it or choose the other split")
    from rayrec.algorithms.baselines import run_baselines  # lazy: torch/pandas only when the command runs

    results, run = run_baselines(
        dataset,
        path,
        split,
        k,
        seed,
        out,
        options=parse_key_values(option, "--option", "n_users=1000"),
        split_options=given,
        relevance=relevance,
        head_fraction=head_fraction,
        log=console.print,
    )
    console.print(
        render_comparison(f"{dataset} · {split} · full-catalog ranking, seen items excluded", results)
    )
    console.print(f"run directory: {run.path}")
