"""``rayrec simulator fit`` and ``rayrec simulate``: fit the simulator's response model and judge the
reference policies on it with the long-term metrics (95% intervals over sessions)."""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, render_table
from rayrec.cli.options import DATASET_ARG, PATH_OPT, parse_key_values
from rayrec.data import Dataset, load_dataset, random_holdout
from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.policies import POLICIES, make_policy
from rayrec.envs.quit_models import QUIT_MODELS
from rayrec.envs.response import (
    ResponseModel,
    cached_response_model,
    default_artifact_dir,
    fit_response_model,
)
from rayrec.envs.rollout import Sessions, run_sessions
from rayrec.errors import ConfigError
from rayrec.eval import dominating_categories

simulator_app = typer.Typer(help="User simulator: fit its response model.", no_args_is_help=True)

KINDS = ("mf", "two-tower")


@simulator_app.command("fit")
def fit(
    name: str = DATASET_ARG,
    path: Path = PATH_OPT,
    kind: str = typer.Option("mf", help="response model: mf | two-tower"),
    out: Path = typer.Option(None, help="artifact directory (default: <cache>/simulators/<dataset>-<kind>)"),
    test_frac: float = typer.Option(0.1, help="share of interactions held out for the reported fit"),
    seed: int = typer.Option(0, help="seed of the holdout split and of training"),
    dim: int = typer.Option(32, help="factor dimension"),
    epochs: int = typer.Option(60, help="maximum epochs (early stopping usually ends sooner)"),
) -> None:
    """Fit the response model on a random holdout, print held-out RMSE/AUC and save the artifact."""
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    train, test = random_holdout(load_dataset(name, path), test_frac=test_frac, seed=seed)
    with console.status(f"fitting {kind} on {train.n_interactions:,} ratings"):
        model, report = fit_response_model(train, test, kind=kind, dim=dim, max_epochs=epochs, seed=seed)
    target = out if out is not None else default_artifact_dir(name, kind)
    model.save(target)
    shown = ("rmse", "auc", "rmse_global_mean", "valid_rmse", "best_epoch", "epochs", "n_train", "n_test")
    rows = [{"metric": k, "value": report[k]} for k in shown]
    rows.append({"metric": "seconds", "value": round(report["seconds"], 2)})
    console.print(render_table(f"{name} response model ({kind}), held-out fit", rows))
    console.print(f"saved to {target}", highlight=False)


def simulate_policy(
    ds: Dataset, model: ResponseModel, policy: str, config: SimConfig, episodes: int, batch_size: int = 1024
) -> tuple[dict[str, tuple[float, float]], Sessions]:
    """Run ``episodes`` sessions of a reference policy; long-term metrics as {name: (mean, ci95)}."""
    core = BatchedRecSim(model, ds.categories, config)
    pol = make_policy(
        policy,
        ds.categories,
        popularity=ds.item_popularity(),
        response=model,
        slate_size=config.slate_size,
        seed=config.seed,
    )
    sessions = run_sessions(core, pol.act, episodes, batch_size=batch_size)
    dominating = dominating_categories(ds.interactions["item"].to_numpy(), ds.categories)
    return sessions.report(ds.categories, dominating), sessions


def simulate(
    name: str = DATASET_ARG,
    path: Path = PATH_OPT,
    policy: str = typer.Option("popularity", help=f"reference policy: {' | '.join(POLICIES)}"),
    episodes: int = typer.Option(1000, help="sessions to run (each started session is run to its end)"),
    quit_model: str = typer.Option("category_window", help=f"quit model: {' | '.join(QUIT_MODELS)}"),
    quit_param: list[str] = typer.Option([], help="quit-model parameter key=value (repeatable)"),
    max_turn: int = typer.Option(30, help="session length cap"),
    slate_size: int = typer.Option(1, help="items per step"),
    kind: str = typer.Option("mf", help="response model kind (fitted and cached on first use)"),
    response: Path = typer.Option(None, help="response-model artifact dir (default: the cached one)"),
    batch_size: int = typer.Option(1024, help="users stepped at once"),
    seed: int = typer.Option(0, help="seed of user sampling and of the policy"),
) -> None:
    """Run a reference policy in the simulator; print R_tra, R_each, Len, category coverage/entropy and
    MCD with 95% intervals."""
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    ds = load_dataset(name, path)
    with console.status("loading the response model (fitting it on first use)"):
        model, where = cached_response_model(name, kind, response, dataset_path=path)
    config = SimConfig(
        max_turn=max_turn,
        slate_size=slate_size,
        quit_model=quit_model,
        quit_params=parse_key_values(quit_param, "--quit-param", "window=4"),
        seed=seed,
    )
    report, sessions = simulate_policy(ds, model, policy, config, episodes, batch_size)
    rows = [{"metric": k, "mean": m, "ci95 ±": c} for k, (m, c) in report.items()]
    console.print(render_table(f"{name} · {policy} · {quit_model} · {episodes} sessions", rows))
    quits = ", ".join(f"{r}: {n}" for r, n in sessions.quit_counts().items())
    console.print(f"sessions ended by {quits}; response model {where}", highlight=False)
