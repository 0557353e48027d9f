"""``rayrec train laac DATASET``: one LAAC run (checkpoint, metrics, curves in a run directory).

Only option parsing and printing live here; the work is ``rayrec.algorithms.laac.train.train_laac``.
The one thing built here is the planner client for ``--via planner``: the CLI is the only layer that
knows both ``algorithms`` and ``serve``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from rayrec.cli.console import console, render_comparison
from rayrec.cli.options import DATASET_ARG, OPTION_OPT, PATH_OPT, check_choice, parse_key_values
from rayrec.errors import ConfigError

train_app = typer.Typer(help="Train a method; each run writes a run directory.", no_args_is_help=True)



def _knob(help_text: str) -> Any:
    return typer.Option(None, help=f"{help_text} [LAACConfig default]")


def _planner_scorer(name: str, address: str | None, timeout_s: float) -> tuple[Any, str]:
    """A PlannerClient on a running planner app and the model id it serves (asked of the replica)."""
    import ray

    from rayrec.llm.planner_client import PlannerClient, get_handle

    if not ray.is_initialized():
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        try:
            ray.init(address=address or "auto", log_to_driver=False, logging_level="ERROR")
        except ConnectionError as exc:
            raise ConfigError(
                f"--via planner needs a running planner: no Ray cluster at {address or 'this machine'} "
                f"({exc}); start it with `rayrec planner up`, or use --via local"
            ) from exc
    try:
        stats = get_handle(name).stats.remote().result(timeout_s=timeout_s)
    except Exception as exc:  # no Serve, no such app, replica not ready: one clear line
        raise ConfigError(
            f"--via planner: the planner app {name!r} does not answer ({type(exc).__name__}); start it with "
            "`rayrec planner up` (or pass --planner-name), or use --via local"
        ) from exc
    return PlannerClient(name, timeout_s=timeout_s), str(stats["model_id"])


@train_app.command("laac")
def laac(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    split: str = typer.Option("leave_last_out", help="leave_last_out | temporal"),
    encoder: str = typer.Option("gru", help="gru | sasrec"),
    iterations: int = typer.Option(100, help="Algorithm.train() calls"),
    updates_per_iteration: int = typer.Option(20, help="learner updates (minibatches) per iteration"),
    eval_every: int = typer.Option(10, help="validation NDCG@k every this many iterations (and at the end)"),
    batch_size: int = typer.Option(256, help="transitions per learner update"),
    history_len: int = typer.Option(10, help="N: items (and ratings) in a state"),
    beta: float = _knob("β: Bellman weight"),
    lam: float = _knob("λ: anchor weight"),
    gamma: float = _knob("γ: discount"),
    tau: float = _knob("τ: EMA rate of the target critics"),
    lr_critic: float = _knob("critic learning rate"),
    lr_actor: float = _knob("actor learning rate (after the warm start)"),
    lr_bc: float = _knob("actor learning rate during the BC warm start"),
    alpha: float = _knob("α: entropy coefficient"),
    actor_update_interval: int = _knob("actor step every m learner steps"),
    bc_warmstart_steps: int = _knob("learner steps of behaviour cloning first"),
    embed_dim: int = _knob("d: encoder width"),
    unexplored: str = _knob("U(s): user | global"),
    comparator: str = _knob("gap-term comparator: llm | data (ATAC) | uniform"),
    llm: str = typer.Option("model", help="π_LLM from: model (the LLM, cached) | random (a stand-in)"),
    llm_model: str = typer.Option(None, help="HF id, local dir or .gguf (default: the embedded SmolLM2)"),
    llm_table: Path = typer.Option(None, help="a precomputed π_LLM .npz (checked against this run)"),
    via: str = typer.Option("local", help="score π_LLM in-process (local) or on the planner app (planner)"),
    planner_name: str = typer.Option("planner", help="--via planner: the Serve app name"),
    planner_timeout: float = typer.Option(600.0, help="--via planner: seconds per batch of prompts"),
    address: str = typer.Option(None, help="--via planner: Ray cluster address (default: this machine's)"),
    n_candidates: int = typer.Option(10, help="K: π_LLM candidates per user"),
    recent: int = typer.Option(5, help="history titles shown to the LLM (and seeding co-occurrence)"),
    llm_stride: int = typer.Option(0, help="one π_LLM row per user (0) or per this many logged steps"),
    llm_batch_size: int = typer.Option(16, help="prompts per LLM call"),
    llm_threads: int = typer.Option(None, help="torch threads of the local LLM (default: torch's)"),
    episodes: Path = typer.Option(None, help="your own logged MDP (RLlib columnar parquet) instead"),
    relevance: str = typer.Option(None, help="which held-out rows are relevant: all | rating>=X"),
    head_fraction: float = typer.Option(0.2, help="share of items (most popular in train) in the head"),
    num_learners: int = typer.Option(0, help="remote learners (0: one in this process)"),
    k: int = typer.Option(10, help="list length of the metrics (NDCG@k selects the model)"),
    seed: int = typer.Option(0, help="seed of the run"),
    out: Path = typer.Option(Path("runs"), help="root of the run directories"),
) -> None:
    """Train LAAC offline on the split's train part; select on validation NDCG@k; report test metrics."""
    from rayrec.algorithms.sequence_encoders import ENCODERS
    from rayrec.data import SPLITS

    check_choice(split, tuple(SPLITS), "--split")
    check_choice(encoder, tuple(ENCODERS), "--encoder")
    check_choice(llm, ("model", "random"), "--llm")
    check_choice(via, ("local", "planner"), "--via")
    if llm == "random" and via == "planner":
        raise ConfigError("--via planner scores with the LLM; drop it with --llm random")
    knobs = {
        "encoder": encoder,
        "beta": beta,
        "lam": lam,
        "gamma": gamma,
        "tau": tau,
        "lr_critic": lr_critic,
        "lr_actor": lr_actor,
        "lr_bc": lr_bc,
        "alpha": alpha,
        "actor_update_interval": actor_update_interval,
        "bc_warmstart_steps": bc_warmstart_steps,
        "embed_dim": embed_dim,
        "unexplored": unexplored,
        "comparator": comparator,
    }
    knobs = {key: value for key, value in knobs.items() if value is not None}
    from rayrec.algorithms.laac.reference_policy import RetrievalConfig  # lazy: torch only when it runs
    from rayrec.algorithms.laac.train import train_laac

    retrieval = RetrievalConfig(k=n_candidates, recent=recent, seed=seed)
    scorer, scorer_model_id = None, None
    if via == "planner" and llm_table is None:
        scorer, scorer_model_id = _planner_scorer(planner_name, address, planner_timeout)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    _quiet_ray_data()
    result = train_laac(
        dataset,
        path=path,
        options=parse_key_values(option, "--option", "n_users=1000"),
        split=split,
        iterations=iterations,
        updates_per_iteration=updates_per_iteration,
        eval_every=eval_every,
        batch_size=batch_size,
        history_len=history_len,
        k=k,
        seed=seed,
        training=knobs,
        llm=llm,
        llm_model=llm_model,
        llm_table=llm_table,
        via=via,
        scorer=scorer,
        scorer_model_id=scorer_model_id,
        retrieval=retrieval,
        llm_stride=llm_stride,
        llm_batch_size=llm_batch_size,
        llm_threads=llm_threads,
        episodes=episodes,
        relevance=relevance,
        head_fraction=head_fraction,
        num_learners=num_learners,
        out=out,
        log=console.print,
    )
    columns = {
        f"{name} {part}": values
        for name, parts in result.metrics.items()
        for part, values in parts.items()
        if part in ("valid", "test")
    }
    console.print(
        render_comparison(
            f"{dataset} · {split} · LAAC ({encoder}) selected at iteration {result.best_iteration} "
            f"(valid NDCG@{k} {result.best_valid:.4f}) vs popularity",
            columns,
        )
    )
    console.print(f"run directory: {result.run.path}")
    _shutdown()


def _quiet_ray_data() -> None:
    """The run shows its own progress: Ray Data's per-dataset log lines and bars would bury it."""
    import logging

    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _shutdown() -> None:
    """Close Ray Data's iterators while Ray is still up (at interpreter exit they would print a
    traceback about a missing Ray connection), then disconnect."""
    import gc

    import ray

    gc.collect()
    if ray.is_initialized():
        ray.shutdown()


def _wire_lerl() -> None:
    """``rayrec train lerl`` lives with the rest of LERL's CLI (rayrec.cli.lerl_cmds)."""
    from rayrec.cli.lerl_cmds import train_lerl_command

    train_app.command("lerl")(train_lerl_command)


_wire_lerl()
