"""Sweeps: prepare the data once, run Tune (ASHA + Optuna), write what a person needs afterwards.

A sweep directory (``runs/tune-<algo>-<dataset>-<stamp>/``) holds ``config.json`` / ``versions.json``
(RunDir), ``sweep.json`` (every setting, so ``--resume`` rebuilds the same trainable), the shared
inputs (LAAC: ``episodes/`` and ``pi_llm.npz``), ``tune/<name>/`` (Tune's experiment: trial results
and kept checkpoints, what ``Tuner.restore`` reads), and at the end ``best_config.yaml``,
``best.json`` (metric, checkpoint path, trial id), ``results.csv`` (one row per trial: its last and
best metric and its hyperparameters) and ``search.png`` (metric per trial against each
hyperparameter).

Resources: each trial asks for ``cpus_per_trial`` (1) CPUs through ``tune.with_resources``; LAAC's
offline pipeline runs outside that reservation (see ``trainables``) and needs about one more CPU, so
at most ``max(1, CPUs // 2)`` LAAC trials and ``max(1, CPUs - 1)`` LERL trials run at once unless
``max_concurrent`` says otherwise. On 2 CPUs: one LAAC trial or one LERL trial at a time, never
pending forever.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.errors import ConfigError
from rayrec.rundir import RunDir
from rayrec.tune.spaces import (
    LAAC_KNOBS,
    LAAC_METRIC,
    LERL_KNOBS,
    LERL_METRIC,
    MODE,
    laac_search_space,
    lerl_search_space,
)
from rayrec.tune.trainables import LAACSweepData, LERLSweepData, laac_trainable, lerl_trainable

EXPERIMENT = "sweep"
LLM_SOURCES = ("model", "random")
LERL_PLANNERS = ("round_robin", "random", "none", "llm")


@dataclass
class SweepResult:
    """Where a sweep's outputs are and what won."""

    path: Path  # the sweep directory
    experiment: Path  # Tune's experiment directory (Tuner.restore)
    metric: str
    best_value: float
    best_config: dict[str, Any]
    best_checkpoint: Path
    best_trial: str
    results_csv: Path
    plot: Path
    best_yaml: Path
    n_trials: int
    grid: Any  # ray.tune.ResultGrid


def _check(samples: int, iterations: int, grace_period: int) -> None:
    for name, value in (("samples", samples), ("iterations", iterations), ("grace_period", grace_period)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}={value!r} must be an integer >= 1")


def _ensure_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)


def _max_concurrent(given: int | None, algo: str, cpus_per_trial: float) -> int:
    if given is not None:
        if given < 1:
            raise ConfigError(f"max_concurrent={given} must be >= 1")
        return given
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1))
    if algo == "laac":  # the offline pipeline runs beside each trial, outside its reservation
        return max(1, int(cpus // (cpus_per_trial + 1.0)))
    return max(1, int((cpus - 1.0) // cpus_per_trial))  # one CPU left to the driver


# --- LAAC ------------------------------------------------------------------------------------------------


def _prepare_laac(sweep: Path, settings: Mapping[str, Any], log: Callable[[str], object]) -> LAACSweepData:
    """Data, split, logged MDP and π_LLM, written under ``sweep`` once (reused on resume)."""
    from rayrec.algorithms.laac.llm_table import load_llm_table, random_llm_table
    from rayrec.data import default_relevance, load_dataset, logged_mdp, split_dataset
    from rayrec.eval import Relevance
    from rayrec.popularity import head_mask

    ds = load_dataset(settings["dataset"], settings.get("path"), **dict(settings.get("options") or {}))
    rule = (
        Relevance.parse(settings["relevance"])
        if settings.get("relevance")
        else Relevance.parse(default_relevance(ds))
    )
    parts = split_dataset(ds, settings["split"], settings.get("split_options"))
    train = parts.train
    head = np.asarray(train.meta["head_items"], bool) if "head_items" in train.meta else None
    if head is None:
        head = head_mask(train.item_popularity(), settings["head_fraction"])
    episodes = (sweep / "episodes").resolve()
    if not episodes.exists():
        info = logged_mdp.write_logged_mdp(train, episodes, history_len=settings["history_len"])
        log(f"logged MDP: {info.n_transitions} transitions of {info.n_users} users → {episodes}")
    table_path = (sweep / "pi_llm.npz").resolve()
    K = int(settings["K"])  # noqa: N806
    if not table_path.exists():
        if settings.get("llm_table"):
            table = load_llm_table(settings["llm_table"])
            table.check(train.n_users, train.n_items, where=f"π_LLM table {settings['llm_table']}")
            K = int(table.k)  # noqa: N806
        elif settings["llm"] == "random":
            table = random_llm_table(train.user_sequences(), train.n_items, K, dataset=train.name,
                                     seed=settings["seed"])  # fmt: skip
            log(f"π_LLM: random stand-in (K={K}), not an LLM")
        else:  # the LLM's table, from the cache when a run already computed it
            from rayrec.algorithms.laac.reference_policy import (
                RetrievalConfig,
                local_model_id,
                local_scorer,
                reference_table,
            )

            res = reference_table(
                train, split=settings["split"], model_id=local_model_id(None),
                scorer_factory=lambda: local_scorer(None), retrieval=RetrievalConfig(k=K), stride=0,
                batch_size=16, progress=bool(settings.get("progress")), log=log,
            )  # fmt: skip
            table = res.table
            log(f"π_LLM: {'cache' if res.cached else 'computed'} ({res.path})")
        table.save(table_path)
    else:
        K = int(load_llm_table(table_path).k)  # noqa: N806
    return LAACSweepData(
        episodes=str(episodes), llm_table=str(table_path), parts=parts, relevance=str(rule), K=K,
        tail_items=np.flatnonzero(~head).tolist(), iterations=settings["iterations"],
        updates_per_iteration=settings["updates_per_iteration"], batch_size=settings["batch_size"],
        k=10, head_fraction=settings["head_fraction"], seed=settings["seed"], fixed=dict(settings["fixed"]),
    )  # fmt: skip


def tune_laac(
    dataset: str = "ml-100k",
    *,
    samples: int = 16,
    iterations: int = 10,
    grace_period: int = 2,
    updates_per_iteration: int = 20,
    batch_size: int = 256,
    history_len: int = 10,
    K: int = 20,  # noqa: N803 (the paper's name)
    llm: str = "model",
    llm_table: Path | None = None,
    path: Path | None = None,
    options: Mapping[str, Any] | None = None,
    split: str = "leave_last_out",
    split_options: Mapping[str, Any] | None = None,
    relevance: str | None = None,
    head_fraction: float = 0.2,
    fixed: Mapping[str, Any] | None = None,
    seed: int = 0,
    cpus_per_trial: float = 1.0,
    max_concurrent: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> SweepResult:
    """Sweep LAAC's β, λ, lr_actor, lr_critic, actor_update_interval, γ on validation NDCG@10.

    Each trial runs ``iterations`` Tune iterations of ``updates_per_iteration`` learner updates; ASHA
    stops the weak ones after ``grace_period``. llm: ``model`` (the LLM's π_LLM, cached by ``rayrec
    train laac``) or ``random`` (a stand-in for quick sweeps); ``llm_table`` a precomputed table.
    ``resume``: a sweep directory to continue with ``Tuner.restore`` (its own settings are used).
    """
    say = log or (lambda _m: None)
    if resume is not None:
        sweep, settings = _load_sweep(resume, "laac")
    else:
        _check(samples, iterations, grace_period)
        if llm not in LLM_SOURCES:
            raise ConfigError(f"llm must be one of {', '.join(LLM_SOURCES)}, not {llm!r}")
        from rayrec.algorithms.laac import LAACConfig
        from rayrec.data import check_split_name

        check_split_name(split)
        LAACConfig().training(**dict(fixed or {})).check_knobs()
        settings = {
            "algo": "laac", "dataset": dataset, "path": str(path) if path else None,
            "options": dict(options or {}), "split": split, "split_options": dict(split_options or {}),
            "relevance": relevance, "head_fraction": head_fraction, "samples": samples,
            "iterations": iterations, "grace_period": grace_period,
            "updates_per_iteration": updates_per_iteration, "batch_size": batch_size,
            "history_len": history_len, "K": K, "llm": llm,
            "llm_table": str(llm_table) if llm_table else None,
            "fixed": dict(fixed or {}), "seed": seed, "cpus_per_trial": cpus_per_trial,
            "max_concurrent": max_concurrent, "metric": LAAC_METRIC,
        }  # fmt: skip
        sweep = RunDir(out, f"tune-laac-{dataset}", settings, seed).path
        (sweep / "sweep.json").write_text(json.dumps(settings, indent=2) + "\n")
    _ensure_ray(address, num_cpus)
    data = _prepare_laac(sweep, {**settings, "progress": progress}, say)
    return _sweep(
        "laac", sweep, settings, laac_trainable, data, laac_search_space(), LAAC_METRIC, LAAC_KNOBS,
        progress, resume is not None,
    )  # fmt: skip


# --- LERL ------------------------------------------------------------------------------------------------


def _prepare_lerl(settings: Mapping[str, Any]) -> LERLSweepData:
    from rayrec.algorithms.lerl.planner_env import make_lerl_env_config
    from rayrec.algorithms.lerl.train import sim_config

    sim = sim_config(settings["quit_model"], settings["quit_params"], settings["seed"], **settings["sim"])
    env_config = make_lerl_env_config(
        settings["dataset"], None, sim, settings.get("path"), loader_options=dict(settings["options"])
    )
    return LERLSweepData(
        env_config=env_config, planner=settings["planner"], iterations=settings["iterations"],
        train_per_iteration=settings["train_per_iteration"], valid_sessions=settings["valid_sessions"],
        num_envs_per_env_runner=settings["num_envs"], seed=settings["seed"], fixed=dict(settings["fixed"]),
        planner_app=settings["planner_app"],
    )  # fmt: skip


def tune_lerl(
    dataset: str = "ml-100k",
    *,
    samples: int = 16,
    iterations: int = 10,
    grace_period: int = 2,
    planner: str = "round_robin",
    train_per_iteration: int = 1,
    valid_sessions: int = 50,
    num_envs: int = 16,
    quit_model: str = "category_window",
    quit_params: Mapping[str, Any] | None = None,
    sim: Mapping[str, Any] | None = None,
    path: Path | None = None,
    options: Mapping[str, Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
    planner_app: str = "planner",
    seed: int = 0,
    cpus_per_trial: float = 1.0,
    max_concurrent: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    out: Path = Path("runs"),
    resume: Path | None = None,
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> SweepResult:
    """Sweep LERL's replan_every, m, κ, N_s, lr and entropy coefficient on validation R_tra.

    planner: ``round_robin`` (default: no LLM needed), ``random``, ``none`` or ``llm`` (the planner app
    ``planner_app`` must be running; N_s only matters there). ``fixed``: LERL/PPO settings kept constant
    (e.g. ``train_batch_size_per_learner``). ``resume``: a sweep directory to continue.
    """
    if resume is not None:
        sweep, settings = _load_sweep(resume, "lerl")
    else:
        _check(samples, iterations, grace_period)
        if planner not in LERL_PLANNERS:
            raise ConfigError(f"planner must be one of {', '.join(LERL_PLANNERS)}, not {planner!r}")
        from rayrec.algorithms.lerl.train import check_quit_model, check_training

        check_quit_model(quit_model)
        check_training(planner, dict(fixed or {}))
        settings = {
            "algo": "lerl", "dataset": dataset, "path": str(path) if path else None,
            "options": dict(options or {}), "samples": samples, "iterations": iterations,
            "grace_period": grace_period, "planner": planner, "train_per_iteration": train_per_iteration,
            "valid_sessions": valid_sessions, "num_envs": num_envs, "quit_model": quit_model,
            "quit_params": dict(quit_params or {}), "sim": dict(sim or {}), "fixed": dict(fixed or {}),
            "planner_app": planner_app, "seed": seed, "cpus_per_trial": cpus_per_trial,
            "max_concurrent": max_concurrent, "metric": LERL_METRIC,
        }  # fmt: skip
        sweep = RunDir(out, f"tune-lerl-{dataset}", settings, seed).path
        (sweep / "sweep.json").write_text(json.dumps(settings, indent=2) + "\n")
    _ensure_ray(address, num_cpus)
    data = _prepare_lerl(settings)
    n_categories = int(np.asarray(data.env_config["categories"]).shape[1])
    return _sweep(
        "lerl", sweep, settings, lerl_trainable, data, lerl_search_space(n_categories), LERL_METRIC,
        LERL_KNOBS, progress, resume is not None,
    )  # fmt: skip


# --- shared ----------------------------------------------------------------------------------------------


def _load_sweep(resume: Path, algo: str) -> tuple[Path, dict[str, Any]]:
    sweep = Path(resume)
    file = sweep / "sweep.json"
    if not file.is_file():
        raise ConfigError(
            f"{sweep} is not a sweep directory (no sweep.json); pass the directory a sweep made"
        )
    settings = json.loads(file.read_text())
    if settings.get("algo") != algo:
        raise ConfigError(
            f"{sweep} is a {settings.get('algo')} sweep; resume it with `rayrec tune {settings.get('algo')}`"
        )
    return sweep, settings


def _sweep(
    algo: str,
    sweep: Path,
    settings: Mapping[str, Any],
    trainable: Any,
    data: Any,
    space: dict[str, Any],
    metric: str,
    knobs: Mapping[str, str],
    progress: bool,
    resume: bool,
) -> SweepResult:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    storage = (sweep / "tune").resolve()
    experiment = storage / EXPERIMENT
    wrapped = tune.with_resources(
        tune.with_parameters(trainable, data=data), {"cpu": float(settings["cpus_per_trial"])}
    )
    if resume:
        if not tune.Tuner.can_restore(str(experiment)):
            raise ConfigError(f"{experiment} holds no Tune experiment to restore")
        tuner = tune.Tuner.restore(
            str(experiment), trainable=wrapped, resume_unfinished=True, resume_errored=True
        )
    else:
        iterations = int(settings["iterations"])
        scheduler = ASHAScheduler(
            time_attr="training_iteration", max_t=iterations,
            grace_period=min(int(settings["grace_period"]), iterations), reduction_factor=2,
        )  # fmt: skip
        reporter = None
        if progress:
            reporter = tune.CLIReporter(
                metric_columns={metric: metric, "training_iteration": "iter"},
                parameter_columns=list(knobs), max_report_frequency=15, sort_by_metric=True,
            )  # fmt: skip (metric and mode come from TuneConfig)
        tuner = tune.Tuner(
            wrapped,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=MODE,
                num_samples=int(settings["samples"]),
                scheduler=scheduler,
                search_alg=OptunaSearch(seed=int(settings["seed"])),
                max_concurrent_trials=_max_concurrent(
                    settings.get("max_concurrent"), algo, float(settings["cpus_per_trial"])
                ),
            ),  # fmt: skip
            run_config=tune.RunConfig(
                name=EXPERIMENT,
                storage_path=str(storage),
                verbose=1 if progress else 0,
                progress_reporter=reporter,
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=2, checkpoint_score_attribute=metric, checkpoint_score_order=MODE
                ),
                failure_config=tune.FailureConfig(max_failures=0),
            ),  # fmt: skip
        )
    # Tune's new output engine ignores a ProgressReporter; the classic one prints the live table.
    old = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0" if progress else "1"
    try:
        grid = tuner.fit()
    finally:
        if old is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = old
    return _write_outputs(algo, sweep, experiment, grid, metric, list(knobs))


def _write_outputs(
    algo: str, sweep: Path, experiment: Path, grid: Any, metric: str, knobs: list[str]
) -> SweepResult:
    import yaml

    ok = [r for r in grid if r.error is None and r.metrics and metric in r.metrics]
    if not ok:
        errors = "; ".join(str(r.error).splitlines()[0] for r in grid if r.error is not None)[:500]
        raise ConfigError(f"no trial of {experiment} reported {metric}" + (f" ({errors})" if errors else ""))
    rows = []
    for r in grid:
        df = r.metrics_dataframe
        best = float(df[metric].max()) if df is not None and metric in df else math.nan
        row = {
            "trial_id": r.metrics.get("trial_id") if r.metrics else None,
            f"{metric}_best": best,
            f"{metric}_last": float(r.metrics.get(metric, math.nan)) if r.metrics else math.nan,
            "iterations": int(r.metrics.get("training_iteration", 0)) if r.metrics else 0,
            "error": None if r.error is None else str(r.error).splitlines()[0],
            **{k: r.config.get(k) for k in knobs},
        }
        rows.append(row)
    import pandas as pd

    table = pd.DataFrame(rows).sort_values(f"{metric}_best", ascending=False)
    csv = sweep / "results.csv"
    table.to_csv(csv, index=False)
    best_result = grid.get_best_result(metric=metric, mode=MODE, scope="all")
    checkpoint = best_result.get_best_checkpoint(metric=metric, mode=MODE) or best_result.checkpoint
    best_value = float(best_result.metrics_dataframe[metric].max())
    config = {k: _plain(v) for k, v in best_result.config.items()}
    best_yaml = sweep / "best_config.yaml"
    summary = {"algo": algo, "metric": metric, "value": best_value, "config": config}
    best_yaml.write_text(yaml.safe_dump(summary, sort_keys=False))
    best = {
        "metric": metric, "value": best_value, "config": config, "checkpoint": str(checkpoint.path),
        "trial_id": best_result.metrics.get("trial_id"), "experiment": str(experiment),
    }  # fmt: skip
    (sweep / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    plot = _plot(table, metric, knobs, sweep / "search.png", f"{algo.upper()} sweep: {metric} per trial")
    return SweepResult(
        path=sweep, experiment=experiment, metric=metric, best_value=best_value, best_config=config,
        best_checkpoint=Path(checkpoint.path), best_trial=str(best["trial_id"]), results_csv=csv, plot=plot,
        best_yaml=best_yaml, n_trials=len(rows), grid=grid,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plot(table: Any, metric: str, knobs: list[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = math.ceil(len(knobs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.9 * rows), squeeze=False)
    y = table[f"{metric}_best"].to_numpy(dtype=float)
    for ax, knob in zip(axes.flat, knobs):
        x = table[knob].to_numpy(dtype=float)
        ax.scatter(x, y, s=22, alpha=0.8)
        if np.isfinite(y).any():
            i = int(np.nanargmax(y))
            ax.scatter([x[i]], [y[i]], s=60, marker="*", color="C3", label="best")
        positive = x[np.isfinite(x)]
        if len(positive) and (positive > 0).all() and positive.max() / max(positive.min(), 1e-12) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(knob, fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
    for ax in list(axes.flat)[len(knobs) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def restore_best(sweep: Path | SweepResult) -> Any:
    """The best trial's algorithm, from its best checkpoint (``Algorithm.from_checkpoint``)."""
    from ray.rllib.algorithms.algorithm import Algorithm

    if isinstance(sweep, SweepResult):
        checkpoint = sweep.best_checkpoint
    else:
        best = Path(sweep) / "best.json"
        if not best.is_file():
            raise ConfigError(f"{sweep} has no best.json: the sweep has not finished; resume it first")
        checkpoint = Path(json.loads(best.read_text())["checkpoint"])
    return Algorithm.from_checkpoint(str(checkpoint))
