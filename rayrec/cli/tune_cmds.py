"""``rayrec tune laac|lerl DATASET --samples 16``: a Ray Tune sweep (ASHA + Optuna) with Tune's live
progress table, ending with the best config (YAML), its checkpoint, a results CSV and a plot of the
search in a sweep directory (``rayrec.tune`` does the work). ``--resume DIR`` continues an interrupted
sweep (``Tuner.restore``) with the settings saved in it.

Typer functions for ``rayrec.cli``: :data:`tune_app` (the group, commands ``laac`` and ``lerl``), or
:func:`tune_laac_command` / :func:`tune_lerl_command` on their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from rayrec.cli.console import console, render_table
from rayrec.cli.options import DATASET_ARG, OPTION_OPT, PATH_OPT, parse_key_values

SAMPLES_OPT = typer.Option(16, help="trials (Optuna proposes each from the results so far)")
ITERATIONS_OPT = typer.Option(10, help="Tune iterations per trial (ASHA's max_t)")
GRACE_OPT = typer.Option(2, help="iterations before ASHA may stop a trial")
FIXED_OPT = typer.Option([], "--set", help="a knob held fixed, key=value (repeatable)")
SEED_OPT = typer.Option(0, help="seed of the search and of every trial")
CPUS_TRIAL_OPT = typer.Option(1.0, help="CPUs reserved per trial")
CONCURRENT_OPT = typer.Option(None, help="trials at once (default: what the CPUs allow)")
ADDRESS_OPT = typer.Option(None, "--address", help="Ray cluster address (default: a local Ray)")
CPUS_OPT = typer.Option(None, help="logical CPUs of the local Ray (default: the machine's)")
OUT_OPT = typer.Option(Path("runs"), help="where sweep directories go")
RESUME_OPT = typer.Option(None, "--resume", help="a sweep directory to continue (Tuner.restore)")
QUIET_OPT = typer.Option(False, "--quiet", help="no live progress table")


def _summary(res) -> None:  # noqa: ANN001 (SweepResult, imported lazily)
    rows = [{"hyperparameter": k, "value": v} for k, v in res.best_config.items()]
    console.print(render_table(f"best of {res.n_trials} trials: {res.metric} = {res.best_value:.4f}", rows))
    console.print(f"best config:     {res.best_yaml}", highlight=False, soft_wrap=True)
    console.print(f"checkpoint:      {res.best_checkpoint}", highlight=False, soft_wrap=True)
    console.print(f"results (CSV):   {res.results_csv}", highlight=False, soft_wrap=True)
    console.print(f"search plot:     {res.plot}", highlight=False, soft_wrap=True)
    console.print(f"resume/continue: rayrec tune ... --resume {res.path}", highlight=False, soft_wrap=True)


def _quiet_ray() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def tune_laac_command(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    samples: int = SAMPLES_OPT,
    iterations: int = ITERATIONS_OPT,
    grace_period: int = GRACE_OPT,
    updates_per_iteration: int = typer.Option(20, help="learner updates per Tune iteration"),
    batch_size: int = typer.Option(256, help="transitions per learner update"),
    history_len: int = typer.Option(10, help="N, items in the state"),
    k_candidates: int = typer.Option(20, "--K", help="π_LLM candidates per user"),
    llm: str = typer.Option("model", help="model (the LLM's π_LLM, cached by `train laac`) | random"),
    llm_table: Path = typer.Option(None, help="a precomputed π_LLM table (.npz) instead"),
    split: str = typer.Option("leave_last_out", help="leave_last_out | temporal"),
    fixed: list[str] = FIXED_OPT,
    seed: int = SEED_OPT,
    cpus_per_trial: float = CPUS_TRIAL_OPT,
    max_concurrent: int = CONCURRENT_OPT,
    address: str = ADDRESS_OPT,
    num_cpus: int = CPUS_OPT,
    out: Path = OUT_OPT,
    resume: Path = RESUME_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Sweep LAAC's β, λ, lr_actor, lr_critic, actor_update_interval and γ on validation NDCG@10."""
    from rayrec.tune import tune_laac

    _quiet_ray()
    res = tune_laac(
        dataset, path=path, options=parse_key_values(option, "--option", "n_users=1000"), samples=samples,
        iterations=iterations, grace_period=grace_period, updates_per_iteration=updates_per_iteration,
        batch_size=batch_size, history_len=history_len, K=k_candidates, llm=llm, llm_table=llm_table,
        split=split, fixed=parse_key_values(fixed, "--set", "tau=0.01"), seed=seed,
        cpus_per_trial=cpus_per_trial, max_concurrent=max_concurrent, address=address, num_cpus=num_cpus,
        out=out, resume=resume, progress=not quiet, log=lambda msg: console.print(msg, highlight=False),
    )  # fmt: skip
    _summary(res)


def tune_lerl_command(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    samples: int = SAMPLES_OPT,
    iterations: int = ITERATIONS_OPT,
    grace_period: int = GRACE_OPT,
    planner: str = typer.Option("round_robin", help="round_robin | random | none | llm (needs the app)"),
    train_per_iteration: int = typer.Option(1, help="PPO iterations per Tune iteration"),
    valid_sessions: int = typer.Option(50, help="validation sessions per evaluation"),
    num_envs: int = typer.Option(16, help="simulated users sampled at once"),
    quit_model: str = typer.Option("category_window", help="category_window | fatigue | temper"),
    quit_param: list[str] = typer.Option([], help="quit-model parameter key=value (repeatable)"),
    sim: list[str] = typer.Option([], "--sim", help="simulator setting key=value (max_turn=20, ...)"),
    fixed: list[str] = FIXED_OPT,
    planner_app: str = typer.Option("planner", "--planner-app", help="Serve app of the LLM planner"),
    seed: int = SEED_OPT,
    cpus_per_trial: float = CPUS_TRIAL_OPT,
    max_concurrent: int = CONCURRENT_OPT,
    address: str = ADDRESS_OPT,
    num_cpus: int = CPUS_OPT,
    out: Path = OUT_OPT,
    resume: Path = RESUME_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Sweep LERL's replan_every, m, κ, N_s, lr and entropy coefficient on validation R_tra."""
    from rayrec.tune import tune_lerl

    _quiet_ray()
    res = tune_lerl(
        dataset, path=path, options=parse_key_values(option, "--option", "n_users=1000"), samples=samples,
        iterations=iterations, grace_period=grace_period, planner=planner,
        train_per_iteration=train_per_iteration, valid_sessions=valid_sessions, num_envs=num_envs,
        quit_model=quit_model, quit_params=parse_key_values(quit_param, "--quit-param", "window=4"),
        sim=parse_key_values(sim, "--sim", "max_turn=20"),
        fixed=parse_key_values(fixed, "--set", "num_epochs=2"), planner_app=planner_app, seed=seed,
        cpus_per_trial=cpus_per_trial, max_concurrent=max_concurrent, address=address, num_cpus=num_cpus,
        out=out, resume=resume, progress=not quiet, log=lambda msg: console.print(msg, highlight=False),
    )  # fmt: skip
    _summary(res)


tune_app = typer.Typer(help="Hyperparameter sweeps (Ray Tune: ASHA + Optuna).", no_args_is_help=True)
tune_app.command("laac")(tune_laac_command)
tune_app.command("lerl")(tune_lerl_command)
