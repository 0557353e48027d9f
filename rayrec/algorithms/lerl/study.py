"""LERL's long-term study: every method × seed × quit model at one environment-step budget.

Trained methods (LERL with the LLM, round-robin and random planners, flat PPO = LERL's module without
a planner, DQN) each train for the same ``budget`` env steps with model selection on validation
sessions (``train.train_online``); reference policies (random, popularity, greedy oracle,
round-robin, LLM planner + greedy items) need no training. Every method is scored on the same test
sessions (``train.TEST_SEED``) with the same long-term metrics, and the table gives, per quit model and
method, the mean ± std over seeds of each seed's test mean (R_tra, R_each, Len, category coverage and
entropy, MCD). Deterministic reference policies (popularity, greedy, round-robin) have std 0 by
construction; a single seed has no std ("–").

Written into the study directory: ``results.md`` and ``results.csv`` (the table), ``runs.csv`` (one
row per method × seed × quit model with its test metrics, env steps and seconds), ``study.json``,
``curves_<quit model>.png`` (training return vs env steps: mean over seeds with a ±std band for every
trained method, reference policies' test R_tra as dashed lines), ``valid_<quit model>.png`` (the
greedy policies' validation R_tra at each evaluation point) and each trained run's own directory
under ``runs/``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.algorithms.lerl.planner_env import make_lerl_env_config
from rayrec.algorithms.lerl.train import (
    DEFAULT_BUDGET,
    LLM_METHODS,
    METHODS,
    TEST_SEED,
    TRAINED_METHODS,
    _check_positive,
    check_method,
    check_quit_model,
    evaluate_policy_longterm,
    plot_learning_curves,
    sim_config,
    train_online,
)
from rayrec.errors import ConfigError
from rayrec.rundir import RunDir

METRICS = ("R_tra", "R_each", "Len", "cat_coverage", "cat_entropy", "MCD")
DEFAULT_QUIT_MODELS = ("category_window", "fatigue", "temper")
PLANNER_KNOBS = ("m", "replan_every", "plan_select", "history_top", "planner_timeout_s")


@dataclass
class StudyResult:
    """The study directory and its tables."""

    path: Path
    table: list[dict[str, Any]]  # one row per quit model × method: metric -> (mean, std), n_seeds
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def markdown(self) -> Path:
        return self.path / "results.md"

    @property
    def csv(self) -> Path:
        return self.path / "results.csv"


def seeds_plan(quit_models: Sequence[str], seeds: int, seeds_other: int | None) -> dict[str, int]:
    """Seeds per quit model: ``seeds`` on the first, ``seeds_other`` (default: ``seeds``) on the rest."""
    other = seeds if seeds_other is None else seeds_other
    return {q: (seeds if i == 0 else other) for i, q in enumerate(quit_models)}


def check_study(
    methods: Sequence[str], quit_models: Sequence[str], seeds: int, seeds_other: int | None, budget: int
) -> None:
    """Every study setting, at once, before any simulator is built."""
    if not methods:
        raise ConfigError(f"the study needs at least one method; known: {', '.join(METHODS)}")
    if not quit_models:
        raise ConfigError("the study needs at least one quit model (e.g. --quit category_window)")
    for m in methods:
        check_method(m)
    for q in quit_models:
        check_quit_model(q)
    for name, values in (("method", methods), ("quit model", quit_models)):
        if len(set(values)) != len(values):
            raise ConfigError(f"a {name} is named twice in {list(values)}")
    _check_positive(seeds=seeds, budget=budget)
    if seeds_other is not None:
        _check_positive(seeds_other=seeds_other)


def _fmt(mean: float, std: float) -> str:
    if not np.isfinite(std):
        return f"{mean:.3f} ± –"
    return f"{mean:.3f} ± {std:.3f}"


def summarise(runs: Sequence[Mapping[str, Any]], methods: Sequence[str], quit_models: Sequence[str]) -> list:
    """Per quit model × method: (mean, std over seeds) of each metric's per-seed test mean."""
    table = []
    for q in quit_models:
        for m in methods:
            rows = [r for r in runs if r["quit_model"] == q and r["method"] == m]
            if not rows:
                continue
            entry: dict[str, Any] = {"quit_model": q, "method": m, "n_seeds": len(rows)}
            for metric in METRICS:
                values = np.array([r["test"][metric][0] for r in rows], dtype=float)
                std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
                entry[metric] = (float(values.mean()), std)
            steps = [r["env_steps"] for r in rows if r.get("env_steps")]
            speed = [r["steps_per_s"] for r in rows if r.get("steps_per_s")]
            entry["env_steps"] = int(np.mean(steps)) if steps else 0
            entry["steps_per_s"] = float(np.mean(speed)) if speed else float("nan")
            table.append(entry)
    return table


def write_tables(path: Path, table: Sequence[Mapping[str, Any]], header: str) -> tuple[Path, Path]:
    """results.csv (mean and std columns per metric) and results.md (one table per quit model)."""
    csv_path = path / "results.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["quit_model", "method", "n_seeds", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")),
             "env_steps", "env_steps_per_s"]
        )  # fmt: skip
        for e in table:
            w.writerow(
                [e["quit_model"], e["method"], e["n_seeds"], *(f"{v:.6g}" for m in METRICS for v in e[m]),
                 e["env_steps"], f"{e['steps_per_s']:.4g}"]
            )  # fmt: skip
    lines = [header, ""]
    for q in dict.fromkeys(e["quit_model"] for e in table):
        lines += [f"### {q}", ""]
        lines.append("| method | seeds | " + " | ".join(METRICS) + " | env steps | steps/s |")
        lines.append("|---|---:|" + "---:|" * len(METRICS) + "---:|---:|")
        for e in (e for e in table if e["quit_model"] == q):
            speed = f"{e['steps_per_s']:.1f}" if np.isfinite(e["steps_per_s"]) else "–"
            steps = str(e["env_steps"]) if e["env_steps"] else "–"
            cells = " | ".join(_fmt(*e[m]) for m in METRICS)
            lines.append(f"| {e['method']} | {e['n_seeds']} | {cells} | {steps} | {speed} |")
        lines.append("")
    md_path = path / "results.md"
    md_path.write_text("\n".join(lines))
    return md_path, csv_path


def _mean_curve(histories: Sequence[Sequence[Mapping[str, Any]]], key: str = "return_mean") -> tuple:
    """Mean ± std over seeds of ``key`` against env steps, on the first run's env-step grid."""
    grid = np.array([h["env_steps"] for h in histories[0]], dtype=float)
    ys = []
    for hist in histories:
        x = np.array([h["env_steps"] for h in hist], dtype=float)
        y = np.array([h[key] for h in hist], dtype=float)
        ok = np.isfinite(y)
        ys.append(np.interp(grid, x[ok], y[ok]) if ok.any() else np.full_like(grid, np.nan))
    ys = np.array(ys)
    return grid, ys.mean(axis=0), (ys.std(axis=0) if len(ys) > 1 else None)


def run_study(
    dataset: str = "ml-100k",
    *,
    methods: Sequence[str] = METHODS,
    quit_models: Sequence[str] = DEFAULT_QUIT_MODELS,
    seeds: int = 3,
    seeds_other: int | None = None,
    budget: int = DEFAULT_BUDGET,
    path: Path | None = None,
    options: Mapping[str, Any] | None = None,
    quit_params: Mapping[str, Mapping[str, Any]] | None = None,
    sim: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    dqn_training: Mapping[str, Any] | None = None,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 16,
    eval_points: int = 3,
    valid_sessions: int = 100,
    test_sessions: int = 300,
    eval_batch_size: int = 64,
    planner_app: str = "planner",
    out: Path = Path("runs"),
    log: Callable[[str], object] | None = None,
) -> StudyResult:
    """Run the study; see the module docstring. Ray must be initialised, and the planner app running
    when ``lerl`` or ``llm_only`` is among the methods (checked first: fails at once otherwise).

    training: LERL/PPO ``training`` settings shared by every LERL variant (and flat PPO);
    dqn_training: DQN's. quit_params: per quit model, its parameter overrides.
    """
    check_study(methods, quit_models, seeds, seeds_other, budget)
    say = log or (lambda _msg: None)
    if any(m in LLM_METHODS for m in methods):
        from rayrec.algorithms.lerl.lerl import ensure_planner

        ensure_planner(planner_app)
    plan = seeds_plan(quit_models, seeds, seeds_other)
    settings = {
        "dataset": dataset, "methods": list(methods), "quit_models": list(quit_models), "seeds": plan,
        "budget": budget, "training": dict(training or {}), "dqn_training": dict(dqn_training or {}),
        "num_env_runners": num_env_runners, "num_envs_per_env_runner": num_envs_per_env_runner,
        "eval_points": eval_points, "valid_sessions": valid_sessions, "test_sessions": test_sessions,
        "test_seed": TEST_SEED, "planner_app": planner_app,
    }  # fmt: skip
    study = RunDir(out, f"study-lerl-{dataset}", settings, 0)
    planner_settings = {k: v for k, v in dict(training or {}).items() if k in PLANNER_KNOBS}
    runs: list[dict[str, Any]] = []
    histories: dict[tuple[str, str], list] = {}
    evaluations: dict[tuple[str, str], list] = {}
    started = time.perf_counter()
    for q in quit_models:
        env_config = make_lerl_env_config(
            dataset, None, sim_config(q, (quit_params or {}).get(q), 0, **dict(sim or {})), path,
            loader_options=dict(options or {}),
        )  # fmt: skip
        for seed in range(plan[q]):
            for method in methods:
                t0 = time.perf_counter()
                if method in TRAINED_METHODS:
                    res = train_online(
                        method, dataset, env_config=env_config, budget=budget, seed=seed,
                        training=dqn_training if method == "dqn" else training,
                        num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
                        eval_points=eval_points, valid_sessions=valid_sessions, test_sessions=test_sessions,
                        eval_batch_size=eval_batch_size, planner_app=planner_app, out=study.file("runs"),
                        log=log,
                    )  # fmt: skip
                    report, env_steps, speed = res.test, res.env_steps, res.steps_per_s
                    histories.setdefault((q, method), []).append(res.history)
                    evaluations.setdefault((q, method), []).append(res.evaluations)
                    run_dir = str(res.run.path)
                else:
                    lerl = {
                        "planner": "llm",
                        "n_reflections": 0,
                        "planner_app": planner_app,
                        **planner_settings,
                    }
                    report, _ = evaluate_policy_longterm(
                        method, env_config, lerl=lerl if method == "llm_only" else None,
                        sessions=test_sessions, seed=TEST_SEED, batch_size=eval_batch_size, policy_seed=seed,
                    )  # fmt: skip
                    env_steps, speed, run_dir = 0, float("nan"), ""
                seconds = time.perf_counter() - t0
                runs.append(
                    {"quit_model": q, "seed": seed, "method": method, "test": report, "env_steps": env_steps,
                     "steps_per_s": speed, "seconds": seconds, "run_dir": run_dir}
                )  # fmt: skip
                say(
                    f"[{q} · seed {seed} · {method}] R_tra {report['R_tra'][0]:.3f}, "
                    f"Len {report['Len'][0]:.2f} "
                    f"({seconds:.0f} s; study {time.perf_counter() - started:.0f} s)"
                )
                _write_runs(study.path, runs)
    table = summarise(runs, methods, quit_models)
    header = (
        f"## LERL study on {dataset}: {budget} env steps per trained run; test: {test_sessions} sessions "
        f"(seed {TEST_SEED}); mean ± std over seeds"
    )
    write_tables(study.path, table, header)
    for q in quit_models:
        refs = {
            e["method"]: e["R_tra"][0]
            for e in table
            if e["quit_model"] == q and e["method"] not in TRAINED_METHODS
        }
        curves = {m: _mean_curve(histories[(q, m)]) for m in methods if (q, m) in histories}
        plot_learning_curves(curves, study.file(f"curves_{q}.png"), f"{dataset} · {q}: training return", refs)
        valid = {
            m: _mean_curve(evaluations[(q, m)], "R_tra")
            for m in methods
            if (q, m) in evaluations and all(evaluations[(q, m)])
        }
        plot_learning_curves(
            valid, study.file(f"valid_{q}.png"), f"{dataset} · {q}: validation R_tra (greedy)", refs
        )
    study.write_json(
        "study.json",
        {"table": table, "runs": runs, "seconds": time.perf_counter() - started},
    )
    return StudyResult(study.path, table, runs)


def _write_runs(path: Path, runs: Sequence[Mapping[str, Any]]) -> None:
    """runs.csv, rewritten after every run, so a study cut short still leaves what it measured."""
    with (path / "runs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["quit_model", "seed", "method", *METRICS, "env_steps", "steps_per_s", "seconds", "run_dir"]
        )
        for r in runs:
            w.writerow(
                [r["quit_model"], r["seed"], r["method"], *(f"{r['test'][m][0]:.6g}" for m in METRICS),
                 r["env_steps"], f"{r['steps_per_s']:.4g}", f"{r['seconds']:.1f}", r["run_dir"]]
            )  # fmt: skip
