"""LAAC's accuracy–novelty study (issue 8, item 5): every method × seed × long-tail keep ratio on one
split, model selection on validation, metrics on test, long-term metrics in the simulator.

Protocol (what the table promises):

- split: ``leave_last_out`` of the dataset (one valid and one test item per user); the same for every
  method. Long-tail study: for each keep ratio the *train* part's tail interactions are thinned with
  ``rayrec.data.long_tail_imbalance`` (head = the top ``head_fraction`` of items on the untouched train
  set, kept in ``meta['head_items']`` so tail share is scored on one partition); valid and test are
  unchanged. keep = 1.0 is the plain study; ``longtail_seeds`` may run fewer seeds on the smaller
  keep ratios than ``seeds`` on the largest.
- budget: the offline RL methods (BC, discrete CQL, ATAC, LAAC and its ablations) each get
  ``iterations`` × ``updates_per_iteration`` learner updates of ``batch_size`` transitions from the same
  logged MDP; SASRec up to ``sasrec_epochs`` epochs with early stopping (patience ``sasrec_patience``).
- selection: validation NDCG@k every ``eval_every`` iterations (and after the last; SASRec every
  epoch); the best point's model is the one scored on test (from the state after train + valid).
  Test numbers never influence anything; ``runs.json`` records the selected iteration/epoch and its
  validation NDCG of every run. Popularity, random and π_LLM top-k have nothing to select.
- π_LLM: computed with ``reference_table`` (disk cache) *once per keep ratio* on that ratio's train
  part and shared by every seed and method of that ratio (ATAC and the uniform comparator read its
  candidates only). Per ratio, not the full train set's table for all, because the table's retrieval
  and its "not interacted" candidate sets would otherwise carry the removed tail interactions into
  LAAC and π_LLM top-k only. ``share_llm_table=True`` uses the keep-1.0 table everywhere instead (one
  LLM pass; the leak is then stated in study.json). ``llm="random"`` is a named stand-in for tests.
- long-term: each trained policy of the largest keep ratio (seed by seed) acts in the simulator
  (``sim_policy``; response model of ``sim_kind``) for ``sim_sessions`` sessions under each quit model
  of ``quit_models``; R_tra and Len (mean over sessions) per run, mean ± std over seeds in the table.
  Every method meets the same simulated users (``SIM_SEED``).

Written into the study directory: ``results.md`` / ``results.csv`` (mean ± std over seeds, one block
per keep ratio), ``runs.csv`` and ``runs.json`` (every run, with its selection and history),
``study.json``, ``accuracy_vs_novelty.png`` (NDCG@k against novelty with error bars, keep = max),
``training_curves.png`` (validation NDCG@k and training loss per method), ``ndcg_vs_keep.png``.
"""

from __future__ import annotations

import csv
import gc
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rayrec.algorithms.baselines.llm_topk import LLMTopKRecommender
from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.baselines.sasrec import SASRecRecommender
from rayrec.algorithms.baselines.simple import PopularityRecommender, RandomRecommender
from rayrec.algorithms.laac.reference_policy import RetrievalConfig
from rayrec.algorithms.laac.sim_policy import policy_for
from rayrec.algorithms.laac.train import LLM_SOURCES, _pi_llm
from rayrec.data import Dataset, default_relevance, load_dataset, logged_mdp, split_dataset
from rayrec.data.imbalance import long_tail_imbalance
from rayrec.errors import ConfigError
from rayrec.eval import Relevance, dominating_categories, evaluate_ranking
from rayrec.rundir import RunDir

METHODS = (
    "popularity",
    "random",
    "sasrec",
    "bc",
    "cql",
    "atac",
    "pi_llm_topk",
    "laac",
    "laac_lam0",
    "laac_uniform",
)
OFFLINE_RL = ("bc", "cql", "atac", "laac", "laac_lam0", "laac_uniform")
# LAAC variants: knobs on top of the shared LAAC training settings.
LAAC_VARIANTS: dict[str, dict[str, Any]] = {
    "laac": {},
    "laac_lam0": {"lam": 0.0},
    "laac_uniform": {"comparator": "uniform"},
    "atac": {"comparator": "data"},
}
DEFAULT_QUIT_MODELS = ("category_window", "fatigue")
LONGTERM = ("R_tra", "Len")
SIM_SEED = 20_240  # the simulated users every method meets
QUICK: dict[str, Any] = {
    "methods": ("popularity", "bc", "laac"),
    "seeds": 1,
    "keeps": (1.0,),
    "iterations": 3,
    "updates_per_iteration": 2,
    "eval_every": 1,
    "batch_size": 64,
    "sasrec_epochs": 1,
    "sim_sessions": 50,
}


def test_metrics(k: int) -> tuple[str, ...]:
    return (f"HR@{k}", f"NDCG@{k}", f"ILD@{k}", "coverage", "tail_share", "novelty", "gini")


@dataclass
class LAACStudyResult:
    path: Path
    table: list[dict[str, Any]]  # per keep × method: metric -> (mean, std), n_seeds, seconds
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def markdown(self) -> Path:
        return self.path / "results.md"

    @property
    def csv(self) -> Path:
        return self.path / "results.csv"


def check_study(methods: Sequence[str], seeds: int, keeps: Sequence[float], **positive: int) -> None:
    """Every setting at once, before any data is read."""
    if not methods:
        raise ConfigError(f"the study needs at least one method; known: {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"a method is named twice in {list(methods)}")
    if not keeps or any(not (0 < float(x) <= 1) for x in keeps) or len(set(keeps)) != len(keeps):
        raise ConfigError(f"long-tail keep ratios must be distinct shares in (0, 1], got {list(keeps)}")
    for name, value in {"seeds": seeds, **positive}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r} is out of range: it must be an int >= 1")


class ModuleRecommender(Recommender):
    """A trained offline RLlib module (LAAC actor, BC, CQL) scored at users' final logged states."""

    def __init__(self, module: Any, history_len: int, name: str) -> None:
        self.module, self.history_len, self.name = module, history_len, name
        self._history: Dataset | None = None
        self._states: np.ndarray | None = None

    def fit(self, train: Dataset) -> ModuleRecommender:
        self._history = train
        self._states = logged_mdp.user_states(train, self.history_len)
        return self

    def observe(self, part: Dataset) -> ModuleRecommender:
        assert self._history is not None
        both = pd.concat([self._history.interactions, part.interactions], ignore_index=True)
        return self.fit(self._history.with_interactions(both))

    def score(self, users: np.ndarray) -> np.ndarray:
        from rayrec.algorithms.offline_recommender import inference_logits

        assert self._states is not None
        return inference_logits(self.module, self._states[np.asarray(users, dtype=np.int64)])


def _inference_module(algo: Any) -> Any:
    if hasattr(algo, "inference_module"):  # LAAC: its own (actor only)
        return algo.inference_module()
    from rayrec.algorithms.offline_recommender import inference_module

    return inference_module(algo)


def _offline_config(
    method: str,
    episodes: Path,
    table_path: Path,
    table_fp: Mapping[str, Any],
    tail: np.ndarray,
    seed: int,
    batch_size: int,
    updates: int,
    laac_training: Mapping[str, Any],
    retrieval: RetrievalConfig,
) -> Any:
    if method == "bc":
        from rayrec.algorithms.baselines.bc import bc_config

        config = bc_config(episodes, train_batch_size_per_learner=batch_size)
        config.offline_data(dataset_num_iters_per_learner=updates)
    elif method == "cql":
        from rayrec.algorithms.baselines.cql import DiscreteCQLConfig

        config = (
            DiscreteCQLConfig()
            .offline_data(input_=str(episodes), dataset_num_iters_per_learner=updates)
            .training(train_batch_size_per_learner=batch_size)
        )
    else:
        from rayrec.algorithms.laac.laac import LAACConfig

        config = (
            LAACConfig()
            .offline_data(input_=str(episodes), dataset_num_iters_per_learner=updates)
            .training(
                **{**dict(laac_training), **LAAC_VARIANTS[method]},
                K=retrieval.k,
                llm_table=str(table_path),
                llm_model=table_fp.get("model"),
                prompt_version=table_fp.get("prompt_version"),
                tail_items=np.flatnonzero(tail).tolist(),
                train_batch_size_per_learner=batch_size,
            )
        )
    return config.learners(num_learners=0).debugging(seed=seed)


def _stats_row(result: Mapping[str, Any]) -> dict[str, float]:
    stats = result.get("learners", {}).get("default_policy", {})
    row = {}
    for key, value in stats.items():
        numeric = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
        if numeric and ("loss" in key or key in ("pi_mass_llm", "pi_mass_tail", "entropy")):
            row[key] = float(value)
    return row


def train_offline(
    config: Any,
    parts: Any,
    rule: Relevance,
    *,
    name: str,
    history_len: int,
    iterations: int,
    eval_every: int,
    k: int,
    head_fraction: float,
) -> tuple[ModuleRecommender, dict[str, Any], list[dict[str, float]]]:
    """``algo.train()`` ``iterations`` times, validation NDCG@k every ``eval_every`` (and at the end);
    returns the best validation point's module (fitted on train), the selection and the history."""
    import torch

    torch.manual_seed(int(config.seed or 0))
    metric = f"NDCG@{k}"
    algo = config.build_algo()
    rec = ModuleRecommender(None, history_len, name).fit(parts.train)
    best, best_it, best_module, history = -math.inf, 0, None, []
    try:
        for it in range(1, iterations + 1):
            tick = time.perf_counter()
            row: dict[str, float] = {"iteration": it, **_stats_row(algo.train())}
            row["seconds"] = round(time.perf_counter() - tick, 3)
            if it % eval_every == 0 or it == iterations:
                rec.module = _inference_module(algo)
                value = evaluate_ranking(
                    rec, parts, relevance=rule, k=k, on="valid", head_fraction=head_fraction, name=name
                ).metrics[metric]
                row[f"valid_{metric}"] = value
                if value > best:
                    best, best_it, best_module = value, it, rec.module
            history.append(row)
    finally:
        algo.stop()
        del algo
        gc.collect()  # closes the offline data's iterators while Ray is still up
    rec.module = best_module
    selection = {
        "selected": "iteration",
        "best_iteration": best_it,
        f"valid_{metric}": best,
        "evaluated_iterations": [r["iteration"] for r in history if f"valid_{metric}" in r],
    }
    return rec, selection, history


def _simple(method: str, seed: int, table: Any) -> Recommender:
    if method == "popularity":
        return PopularityRecommender()
    if method == "random":
        return RandomRecommender(seed=seed)
    return LLMTopKRecommender(table)


def _longterm(
    rec: Any,
    train: Dataset,
    model: Any,
    categories: np.ndarray,
    dominating: np.ndarray,
    quit_models: Sequence[str],
    sessions: int,
    label: str,
) -> dict[str, float]:
    from rayrec.envs.config import SimConfig
    from rayrec.envs.core import BatchedRecSim
    from rayrec.envs.rollout import run_sessions

    out: dict[str, float] = {}
    for q in quit_models:
        core = BatchedRecSim(model, categories, SimConfig(quit_model=q, seed=SIM_SEED))
        policy = policy_for(rec, train, categories, seed=SIM_SEED, label=label)
        report = run_sessions(core, policy.act, sessions, batch_size=min(256, sessions)).report(
            categories, dominating
        )
        for metric in LONGTERM:
            out[f"{metric}_{q}"] = float(report[metric][0])
    return out


def run_laac_study(
    dataset: str = "ml-100k",
    *,
    path: Path | None = None,
    options: Mapping[str, Any] | None = None,
    methods: Sequence[str] = METHODS,
    seeds: int = 3,
    keeps: Sequence[float] = (1.0,),
    longtail_seeds: int | None = None,
    iterations: int = 100,
    updates_per_iteration: int = 20,
    eval_every: int = 10,
    batch_size: int = 256,
    history_len: int = 10,
    sasrec_epochs: int = 200,
    sasrec_patience: int = 10,
    sasrec: Mapping[str, Any] | None = None,
    laac_training: Mapping[str, Any] | None = None,
    k: int = 10,
    head_fraction: float = 0.2,
    relevance: str | None = None,
    llm: str = "model",
    llm_model: str | None = None,
    retrieval: RetrievalConfig | None = None,
    llm_batch_size: int = 16,
    llm_threads: int | None = None,
    share_llm_table: bool = False,
    quit_models: Sequence[str] = DEFAULT_QUIT_MODELS,
    sim_sessions: int = 300,
    sim_kind: str = "mf",
    out: Path = Path("runs"),
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> LAACStudyResult:
    """Run the study (see the module docstring); Ray is started locally when an RL method needs it.

    longtail_seeds: seeds for the keep ratios below the largest (default ``seeds``); 1 keeps the full
    study near its time budget on 2 cores (the table's ``seeds`` column says how many each row has).
    """
    longtail_seeds = seeds if longtail_seeds is None else longtail_seeds
    check_study(
        methods,
        seeds,
        keeps,
        longtail_seeds=longtail_seeds,
        iterations=iterations,
        updates_per_iteration=updates_per_iteration,
        eval_every=eval_every,
        batch_size=batch_size,
        history_len=history_len,
        sasrec_epochs=sasrec_epochs,
        sasrec_patience=sasrec_patience,
        k=k,
        sim_sessions=sim_sessions,
    )
    if llm not in LLM_SOURCES:
        raise ConfigError(f"llm must be one of {', '.join(LLM_SOURCES)}, not {llm!r}")
    if not 0.0 < head_fraction < 1.0:
        raise ConfigError(f"head_fraction={head_fraction} must lie in (0, 1)")
    from rayrec.algorithms.laac.laac import LAACConfig
    from rayrec.envs.quit_models import QUIT_MODELS

    bad = [q for q in quit_models if q not in QUIT_MODELS]
    if bad:
        raise ConfigError(f"unknown quit model(s) {bad}; known: {', '.join(QUIT_MODELS)}")
    retrieval = retrieval or RetrievalConfig()
    LAACConfig().training(**dict(laac_training or {}), K=retrieval.k, history_len=history_len).check_knobs()
    say = log or (lambda _msg: None)
    keeps = sorted((float(x) for x in keeps), reverse=True)

    ds = load_dataset(dataset, path, **dict(options or {}))
    rule = Relevance.parse(relevance) if relevance is not None else Relevance.parse(default_relevance(ds))
    parts = split_dataset(ds, "leave_last_out", None)
    settings = {
        "dataset": dataset,
        "path": path,
        "options": dict(options or {}),
        "split": "leave_last_out",
        "methods": list(methods),
        "seeds": seeds,
        "longtail_seeds": longtail_seeds,
        "keeps": keeps,
        "iterations": iterations,
        "updates_per_iteration": updates_per_iteration,
        "eval_every": eval_every,
        "batch_size": batch_size,
        "history_len": history_len,
        "sasrec_epochs": sasrec_epochs,
        "sasrec_patience": sasrec_patience,
        "sasrec": dict(sasrec or {}),
        "laac_training": dict(laac_training or {}),
        "k": k,
        "head_fraction": head_fraction,
        "relevance": str(rule),
        "llm": llm,
        "llm_model": llm_model,
        "retrieval": retrieval,
        "share_llm_table": share_llm_table,
        "quit_models": list(quit_models),
        "sim_sessions": sim_sessions,
        "sim_kind": sim_kind,
        "sim_seed": SIM_SEED,
        "llm_table_scope": "keep-1.0 train split, shared (removed tail interactions visible to π_LLM)"
        if share_llm_table
        else "one table per keep ratio, from that ratio's train part",
    }
    study = RunDir(out, f"study-laac-{dataset}", settings, 0)

    # -- data per keep ratio: thinned train, episodes, π_LLM ------------------------------------------
    needs_rl = any(m in OFFLINE_RL for m in methods)
    needs_llm = any(m in (*LAAC_VARIANTS, "pi_llm_topk") for m in methods)
    per_keep: dict[float, dict[str, Any]] = {}
    tables: dict[str, Any] = {}
    for keep in keeps:
        train_k, report = long_tail_imbalance(parts.train, keep, head_fraction, seed=0)
        entry: dict[str, Any] = {"parts": replace(parts, train=train_k), "filter": report}
        if needs_rl:
            eps = study.file(f"episodes-keep{keep:g}").resolve()
            logged_mdp.write_logged_mdp(train_k, eps, history_len=history_len)
            entry["episodes"] = eps
        if needs_llm:
            if share_llm_table and keep != keeps[0]:
                entry["table"], entry["table_path"] = (
                    per_keep[keeps[0]]["table"],
                    per_keep[keeps[0]]["table_path"],
                )
            else:
                table, info = _pi_llm(
                    train_k,
                    "leave_last_out",
                    llm,
                    llm_model,
                    None,
                    "local",
                    None,
                    None,
                    retrieval,
                    0,
                    llm_batch_size,
                    llm_threads,
                    0,
                    progress,
                    say,
                )
                entry["table"], entry["table_path"] = (
                    table,
                    table.save(study.file(f"pi_llm-keep{keep:g}.npz")),
                )
                tables[f"{keep:g}"] = info
        per_keep[keep] = entry
    study.write_json("llm_tables.json", tables)

    # -- the simulator (long-term metrics of the largest keep ratio's policies) -----------------------
    sim: dict[str, Any] | None = None
    if quit_models:
        from rayrec.envs.artifacts import cached_response_model, require_categories

        data = require_categories(ds)
        model, _ = cached_response_model(
            dataset, sim_kind, dataset_path=path, loader_options=dict(options or {}), data=data
        )
        dominating = dominating_categories(parts.train.interactions["item"].to_numpy(), data.categories)
        sim = {"model": model, "categories": np.asarray(data.categories, bool), "dominating": dominating}

    if needs_rl:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")

    # -- every keep × seed × method ---------------------------------------------------------------------
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        plan = {keep: seeds if keep == keeps[0] else longtail_seeds for keep in keeps}
        task = bar.add_task("LAAC study", total=sum(plan.values()) * len(methods))
        for keep in keeps:
            entry = per_keep[keep]
            p = entry["parts"]
            tail = ~np.asarray(p.train.meta["head_items"], bool)
            for seed in range(plan[keep]):
                for method in methods:
                    bar.update(task, description=f"keep {keep:g} · seed {seed} · {method}")
                    tick = time.perf_counter()
                    history: list[dict[str, float]] = []
                    selection: dict[str, Any] = {"selected": "none (nothing to select)"}
                    if method in OFFLINE_RL:
                        config = _offline_config(
                            method,
                            entry["episodes"],
                            entry.get("table_path", Path()),
                            entry["table"].fingerprint if "table" in entry else {},
                            tail,
                            seed,
                            batch_size,
                            updates_per_iteration,
                            laac_training or {},
                            retrieval,
                        )
                        valid_rec, selection, history = train_offline(
                            config,
                            p,
                            rule,
                            name=method,
                            history_len=history_len,
                            iterations=iterations,
                            eval_every=eval_every,
                            k=k,
                            head_fraction=head_fraction,
                        )
                        test_rec: Any = ModuleRecommender(valid_rec.module, history_len, method).fit(p.train)
                        test_rec.observe(p.valid)
                    elif method == "sasrec":
                        cfg = {
                            "max_epochs": sasrec_epochs,
                            "patience": sasrec_patience,
                            "k": k,
                            "relevance": str(rule),
                            **dict(sasrec or {}),
                            "seed": seed,
                        }
                        valid_rec = SASRecRecommender(**cfg).fit(p.train, p)
                        history = [
                            {"iteration": r["epoch"], **{x: y for x, y in r.items() if x != "epoch"}}
                            for r in valid_rec.log
                        ]
                        selection = {
                            "selected": "epoch",
                            "best_iteration": valid_rec.best_epoch,
                            f"valid_NDCG@{k}": valid_rec.best_valid,
                            "epochs_run": len(valid_rec.log),
                        }
                        test_rec = valid_rec  # scored on valid below first, then observes valid
                    else:
                        valid_rec = _simple(method, seed, entry.get("table")).fit(p.train)
                        test_rec = valid_rec
                    fit_seconds = time.perf_counter() - tick
                    scores = {}
                    for part, rec in (("valid", valid_rec), ("test", test_rec)):
                        if part == "test" and method == "sasrec":
                            rec.observe(p.valid)
                        scores[part] = evaluate_ranking(
                            rec, p, relevance=rule, k=k, on=part, head_fraction=head_fraction, name=method
                        ).metrics
                    longterm = {}
                    if sim is not None and keep == keeps[0]:
                        longterm = _longterm(
                            test_rec,
                            p.train,
                            sim["model"],
                            sim["categories"],
                            sim["dominating"],
                            quit_models,
                            sim_sessions,
                            method,
                        )
                    run = {
                        "keep": keep,
                        "seed": seed,
                        "method": method,
                        "valid": scores["valid"],
                        "test": scores["test"],
                        "longterm": longterm,
                        "selection": selection,
                        "fit_seconds": round(fit_seconds, 2),
                        "seconds": round(time.perf_counter() - tick, 2),
                        "history": history,
                    }
                    runs.append(run)
                    say(
                        f"[keep {keep:g} · seed {seed} · {method}] "
                        f"test NDCG@{k} {scores['test'][f'NDCG@{k}']:.4f}, "
                        f"novelty {scores['test']['novelty']:.3f} ({run['seconds']:.0f} s; "
                        f"study {time.perf_counter() - started:.0f} s)"
                    )
                    _write_runs(study, runs, k)
                    bar.advance(task)

    table = summarise(runs, methods, keeps, k)
    header = (
        f"## LAAC study on {dataset}: leave_last_out, {seeds} seed(s) "
        f"(keep < {keeps[0]:g}: {longtail_seeds}); offline RL {iterations} iterations × "
        f"{updates_per_iteration} updates × batch {batch_size}; SASRec ≤ {sasrec_epochs} epochs "
        f"(patience {sasrec_patience}); selection on valid NDCG@{k}, test metrics; long-term: "
        f"{sim_sessions} sessions per quit model (keep {keeps[0]:g}); mean ± std over seeds"
    )
    write_tables(study.path, table, header, k)
    _plots(study.path, runs, table, methods, keeps, k, dataset)
    study.write_json(
        "study.json",
        {
            "table": table,
            "seconds": time.perf_counter() - started,
            "filters": {f"{x:g}": per_keep[x]["filter"] for x in keeps},
        },
    )
    return LAACStudyResult(study.path, table, runs)


def _columns(runs: Sequence[Mapping[str, Any]], k: int) -> list[str]:
    extra = sorted({key for r in runs for key in r["longterm"]})
    return [*test_metrics(k), *extra]


def summarise(
    runs: Sequence[Mapping[str, Any]], methods: Sequence[str], keeps: Sequence[float], k: int
) -> list:
    """Per keep × method: (mean, std over seeds) of every test and long-term metric (std NaN for 1 seed)."""
    table = []
    columns = _columns(runs, k)
    for keep in keeps:
        for m in methods:
            rows = [r for r in runs if r["keep"] == keep and r["method"] == m]
            if not rows:
                continue
            entry: dict[str, Any] = {
                "keep": keep,
                "method": m,
                "n_seeds": len(rows),
                "seconds": float(np.mean([r["seconds"] for r in rows])),
            }
            for c in columns:
                values = np.array([{**r["test"], **r["longterm"]}.get(c, np.nan) for r in rows], float)
                if np.isnan(values).all():
                    continue
                std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
                entry[c] = (float(np.nanmean(values)), std)
            table.append(entry)
    return table


def _fmt(value: tuple[float, float] | None) -> str:
    if value is None:
        return "–"
    mean, std = value
    return f"{mean:.4f} ± {std:.4f}" if np.isfinite(std) else f"{mean:.4f} ± –"


def write_tables(path: Path, table: Sequence[Mapping[str, Any]], header: str, k: int) -> tuple[Path, Path]:
    columns = [c for c in dict.fromkeys(c for e in table for c in e if isinstance(e[c], tuple))]
    csv_path = path / "results.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["keep", "method", "n_seeds", *(f"{c}_{s}" for c in columns for s in ("mean", "std")), "seconds"]
        )
        for e in table:
            cells = [f"{v:.6g}" for c in columns for v in e.get(c, (float("nan"), float("nan")))]
            w.writerow([f"{e['keep']:g}", e["method"], e["n_seeds"], *cells, f"{e['seconds']:.1f}"])
    lines = [header, ""]
    for keep in dict.fromkeys(e["keep"] for e in table):
        lines += [f"### long-tail keep {keep:g}", ""]
        lines.append("| method | seeds | " + " | ".join(columns) + " | s/run |")
        lines.append("|---|---:|" + "---:|" * len(columns) + "---:|")
        for e in (e for e in table if e["keep"] == keep):
            cells = " | ".join(_fmt(e.get(c)) for c in columns)
            lines.append(f"| {e['method']} | {e['n_seeds']} | {cells} | {e['seconds']:.0f} |")
        lines.append("")
    md_path = path / "results.md"
    md_path.write_text("\n".join(lines))
    return md_path, csv_path


def _write_runs(study: RunDir, runs: Sequence[Mapping[str, Any]], k: int) -> None:
    """runs.csv and runs.json, rewritten after every run, so a study cut short keeps what it measured."""
    study.write_json("runs.json", runs)
    columns = _columns(runs, k)
    with study.file("runs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["keep", "seed", "method", *columns, "best_iteration", f"valid_NDCG@{k}", "seconds"])
        for r in runs:
            values = {**r["test"], **r["longterm"]}
            sel = r["selection"]
            w.writerow(
                [
                    f"{r['keep']:g}",
                    r["seed"],
                    r["method"],
                    *(f"{values.get(c, float('nan')):.6g}" for c in columns),
                    sel.get("best_iteration", ""),
                    sel.get(f"valid_NDCG@{k}", ""),
                    r["seconds"],
                ]
            )


def _plots(
    path: Path,
    runs: Sequence[Mapping[str, Any]],
    table: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    keeps: Sequence[float],
    k: int,
    dataset: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ndcg = f"NDCG@{k}"
    color = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    # accuracy vs novelty at the largest keep ratio
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for e in (e for e in table if e["keep"] == keeps[0]):
        (x, dx), (y, dy) = e["novelty"], e[ndcg]
        ax.errorbar(
            x,
            y,
            xerr=np.nan_to_num(dx),
            yerr=np.nan_to_num(dy),
            fmt="o",
            color=color[e["method"]],
            capsize=3,
            label=e["method"],
        )
        ax.annotate(e["method"], (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("novelty (test, mean ± std over seeds)")
    ax.set_ylabel(f"{ndcg} (test)")
    ax.set_title(f"{dataset}: accuracy vs novelty (keep {keeps[0]:g})")
    fig.tight_layout()
    fig.savefig(path / "accuracy_vs_novelty.png", dpi=120)
    plt.close(fig)

    # training curves: validation NDCG and a loss, each seed of the largest keep ratio
    trained = [m for m in methods if any(r["history"] for r in runs if r["method"] == m)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for m in trained:
        for r in (r for r in runs if r["method"] == m and r["keep"] == keeps[0] and r["history"]):
            pts = [(h["iteration"], h[f"valid_{ndcg}"]) for h in r["history"] if f"valid_{ndcg}" in h]
            label = m if r["seed"] == 0 else None
            if pts:
                axes[0].plot(*zip(*pts), marker="o", ms=3, color=color[m], label=label)
            loss_key = next(
                (
                    key
                    for key in ("loss", "critic_loss", "policy_loss", "total_loss")
                    if any(key in h for h in r["history"])
                ),
                next((key for h in r["history"] for key in h if "loss" in key), None),
            )
            if loss_key:
                lpts = [(h["iteration"], h[loss_key]) for h in r["history"] if loss_key in h]
                axes[1].plot(*zip(*lpts), color=color[m], label=f"{m} ({loss_key})" if label else None)
    axes[0].set_title(f"validation {ndcg}")
    axes[1].set_title("training loss")
    for ax in axes:
        ax.set_xlabel("iteration (SASRec: epoch)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: training curves (keep {keeps[0]:g}, every seed)")
    fig.tight_layout()
    fig.savefig(path / "training_curves.png", dpi=120)
    plt.close(fig)

    # NDCG against the long-tail keep ratio
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for m in methods:
        pts = sorted((e["keep"], *e[ndcg]) for e in table if e["method"] == m)
        if pts:
            xs, ys, ds = zip(*pts)
            ax.errorbar(xs, ys, yerr=np.nan_to_num(ds), marker="o", capsize=3, color=color[m], label=m)
    ax.set_xlabel("long-tail training interactions kept")
    ax.set_ylabel(f"{ndcg} (test)")
    ax.set_title(f"{dataset}: {ndcg} vs long-tail keep ratio")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path / "ndcg_vs_keep.png", dpi=120)
    plt.close(fig)
