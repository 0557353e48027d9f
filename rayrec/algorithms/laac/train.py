"""One LAAC run, end to end: data → logged MDP → π_LLM → ``Algorithm.train()`` with model selection on
validation → test metrics of the selected model → a run directory.

Library code (``rayrec train laac`` only parses options and prints), so the study, the demo and scripts
share one path. What a run directory holds:

- ``config.json`` (every setting, the π_LLM table's fingerprint), ``versions.json``, seed;
- ``episodes/`` (the logged MDP, RLlib's columnar parquet) and ``pi_llm.npz`` (the π_LLM table used),
  so the checkpoint restores from the run directory alone;
- ``checkpoint/``: the algorithm at the best validation NDCG@k (``Algorithm.from_checkpoint``);
- ``metrics.json``: validation and test metrics of the selected LAAC and of the popularity baseline
  on the same split, scored by the same ``rayrec.eval.evaluate_ranking``; ``evaluation.json``;
- ``history.json``: per-iteration learner statistics and validation NDCG@k;
- ``curves_losses.png``, ``curves_valid.png``, ``curves_policy.png`` (mass on π_LLM candidates, on the
  long tail, entropy).

Model selection: NDCG@k on the validation part every ``eval_every`` iterations (and after the last);
the best iteration's algorithm is checkpointed and only that model is scored on test (from the state
after train + valid, as the baselines are). Test numbers never influence anything.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.algorithms.baselines.simple import PopularityRecommender
from rayrec.algorithms.laac.laac import LAACConfig
from rayrec.algorithms.laac.llm_table import LLMTable, random_llm_table
from rayrec.algorithms.laac.recommender import LAACRecommender
from rayrec.algorithms.laac.reference_policy import (
    PROMPT_VERSION,
    VIAS,
    ChoiceScorer,
    RetrievalConfig,
    load_checked,
    local_model_id,
    local_scorer,
    reference_table,
    save_atomic,
    train_digest,
)
from rayrec.data import check_split_name, default_relevance, load_dataset, logged_mdp, split_dataset
from rayrec.errors import ConfigError
from rayrec.eval import Relevance, evaluate_ranking
from rayrec.popularity import head_mask
from rayrec.rundir import RunDir

LLM_SOURCES = ("model", "random")
# Learner statistics kept per iteration (LAACTorchLearner._log) and plotted.
LOSS_KEYS = ("critic_loss", "gap_1", "bellman_1", "anchor_1", "actor_loss", "bc_loss")
POLICY_KEYS = ("pi_mass_llm", "pi_mass_tail", "entropy", "f_logged_mean", "f_llm_only_mean")


@dataclass
class LAACRunResult:
    """What one run produced: metrics per method and part, the selected iteration, the run directory."""

    run: RunDir
    metrics: dict[str, dict[str, dict[str, float]]]  # method -> "valid"/"test" -> metric -> value
    best_iteration: int
    best_valid: float
    history: list[dict[str, float]] = field(default_factory=list)
    llm_table: dict[str, Any] = field(default_factory=dict)  # path, cached, seconds, fingerprint


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r} is out of range: it must be an int >= 1")


def train_laac(
    dataset: str = "ml-100k",
    *,
    path: Path | None = None,
    options: Mapping[str, object] | None = None,
    split: str = "leave_last_out",
    split_options: Mapping[str, object] | None = None,
    iterations: int = 100,
    updates_per_iteration: int = 20,
    eval_every: int = 10,
    batch_size: int = 256,
    history_len: int = 10,
    k: int = 10,
    seed: int = 0,
    training: Mapping[str, Any] | None = None,
    llm: str = "model",
    llm_model: str | None = None,
    llm_table: Path | None = None,
    via: str = "local",
    scorer: ChoiceScorer | None = None,
    scorer_model_id: str | None = None,
    retrieval: RetrievalConfig | None = None,
    llm_stride: int = 0,
    llm_batch_size: int = 16,
    llm_threads: int | None = None,
    episodes: Path | None = None,
    relevance: str | None = None,
    head_fraction: float = 0.2,
    num_learners: int = 0,
    out: Path = Path("runs"),
    run_name: str = "laac",
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> LAACRunResult:
    """Train LAAC on ``dataset``'s split, select on validation NDCG@k, score the selected model on test.

    training: LAACConfig knobs (beta, lam, gamma, tau, lr_critic, lr_actor, lr_bc, alpha,
        actor_update_interval, bc_warmstart_steps, encoder, embed_dim, unexplored, comparator).
    iterations × updates_per_iteration learner updates of ``batch_size`` transitions each.
    llm: ``model`` (π_LLM from the LLM, cached) or ``random`` (a named stand-in, for quick runs);
        llm_table: a precomputed table instead (checked against this run's dataset, model, K, stride).
    via: ``local`` (in-process backend, ``llm_model`` or the embedded SmolLM2) or ``planner``, which
        needs ``scorer`` (e.g. a ``PlannerClient``; built by the CLI, since ``serve`` sits above this
        layer) and ``scorer_model_id`` (the model behind it).
    episodes: the user's own logged MDP (RLlib columnar parquet with user_id) instead of writing one
        from the split's train part; it must describe the same users and catalog.
    """
    # -- every cheap check before any data is read or any model is loaded --------------------------
    _check_positive(
        iterations=iterations,
        updates_per_iteration=updates_per_iteration,
        eval_every=eval_every,
        batch_size=batch_size,
        history_len=history_len,
        k=k,
        llm_batch_size=llm_batch_size,
    )
    if llm not in LLM_SOURCES:
        raise ConfigError(f"llm must be one of {', '.join(LLM_SOURCES)}, not {llm!r}")
    if via not in VIAS:
        raise ConfigError(f"via must be one of {', '.join(VIAS)}, not {via!r}")
    if via == "planner" and llm == "model" and llm_table is None and (scorer is None or not scorer_model_id):
        raise ConfigError("via=planner needs a scorer (PlannerClient) and its model id; the CLI builds them")
    if num_learners < 0:
        raise ConfigError(f"num_learners={num_learners} must be >= 0")
    retrieval = retrieval or RetrievalConfig()
    check_split_name(split)
    knobs = dict(training or {})
    base = LAACConfig().training(**knobs, K=retrieval.k, llm_stride=llm_stride, history_len=history_len)
    base.check_knobs()
    given = Relevance.parse(relevance) if relevance is not None else None
    say = log or (lambda _msg: None)

    # -- data ----------------------------------------------------------------------------------------
    ds = load_dataset(dataset, path, **dict(options or {}))
    rule = given if given is not None else Relevance.parse(default_relevance(ds))
    parts = split_dataset(ds, split, split_options)
    train = parts.train
    head = np.asarray(train.meta["head_items"], bool) if "head_items" in train.meta else None
    if head is None:
        head = head_mask(train.item_popularity(), head_fraction)
    config = {
        "dataset": dataset,
        "path": path,
        "options": dict(options or {}),
        "split": split,
        "split_options": dict(split_options or {}),
        "train_digest": train_digest(train),
        "iterations": iterations,
        "updates_per_iteration": updates_per_iteration,
        "eval_every": eval_every,
        "batch_size": batch_size,
        "history_len": history_len,
        "k": k,
        "training": knobs,
        "llm": llm,
        "llm_model": llm_model,
        "via": via,
        "retrieval": retrieval,
        "llm_stride": llm_stride,
        "relevance": str(rule),
        "head_fraction": head_fraction,
        "num_learners": num_learners,
    }
    if episodes is not None:  # the user's own logged MDP: its columns, before anything is computed
        required = ["obs", "new_obs", "actions", "rewards", "terminateds", logged_mdp.USER_ID]
        logged_mdp.check_episode_columns(episodes, required + ([logged_mdp.STEP] if llm_stride else []))
        episodes = Path(episodes).resolve()

    # -- π_LLM (checked against this run before anything is written) -------------------------------
    table, table_info = _pi_llm(
        train, split, llm, llm_model, llm_table, via, scorer, scorer_model_id, retrieval, llm_stride,
        llm_batch_size, llm_threads, seed, progress, say,
    )  # fmt: skip

    run = RunDir(out, f"{run_name}-{dataset}", config, seed)
    if episodes is None:
        episodes = run.file("episodes").resolve()  # absolute: the checkpoint's config points here
        info = logged_mdp.write_logged_mdp(train, episodes, history_len=history_len)
        say(f"logged MDP: {info.n_transitions} transitions of {info.n_users} users → {episodes}")
    table_path = save_atomic(table, run.file("pi_llm.npz")).resolve()
    run.write_json("llm_table.json", table_info)

    # -- the algorithm -------------------------------------------------------------------------------
    algo_config = (
        LAACConfig()
        .offline_data(input_=str(episodes), dataset_num_iters_per_learner=updates_per_iteration)
        .training(
            **knobs,
            K=retrieval.k,
            llm_stride=llm_stride,
            llm_table=str(table_path),
            llm_model=table.fingerprint.get("model"),
            prompt_version=table.fingerprint.get("prompt_version"),
            tail_items=np.flatnonzero(~head).tolist(),
            train_batch_size_per_learner=batch_size,
        )
        .learners(num_learners=num_learners)
        .debugging(seed=seed)
    )
    algo_config.validate()  # episodes' columns, the table against them: before anything trains
    import ray
    import torch

    if not ray.is_initialized():  # a local Ray for the offline data path; quiet, no dashboard
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    torch.manual_seed(seed)
    algo = algo_config.build_algo()
    popularity = PopularityRecommender().fit(train)
    metric = f"NDCG@{k}"
    try:
        best, best_module, history = _train_loop(
            algo, parts, rule, k, head_fraction, iterations, eval_every, run, progress, metric
        )
    finally:
        algo.stop()
        del algo  # drops the offline data's open iterators while Ray is up
    if best_module is None:
        raise ConfigError("no validation evaluation ran; set eval_every <= iterations")

    # -- selected model on valid and test, popularity beside it ---------------------------------------
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    evaluation: dict[str, Any] = {}
    laac_valid = LAACRecommender(best_module).fit(train)
    laac_test = LAACRecommender(best_module).fit(train).observe(parts.valid)
    for name, on_valid, on_test in (("laac", laac_valid, laac_test), ("popularity", popularity, popularity)):
        metrics[name] = {}
        for part, scorer_ in (("valid", on_valid), ("test", on_test)):
            result = evaluate_ranking(
                scorer_, parts, relevance=rule, k=k, on=part, head_fraction=head_fraction, name=name
            )
            metrics[name][part] = result.metrics
            evaluation[part] = result.info()
    metrics["laac"]["selection"] = {"best_iteration": best[1], f"valid_{metric}": best[0]}
    run.write_json("metrics.json", metrics)
    run.write_json("evaluation.json", evaluation)
    run.write_json("history.json", history)
    _plot(history, run, metric, dataset)
    return LAACRunResult(run, metrics, best[1], best[0], history, table_info)


def _pi_llm(
    train: Any,
    split: str,
    llm: str,
    llm_model: str | None,
    llm_table: Path | None,
    via: str,
    scorer: ChoiceScorer | None,
    scorer_model_id: str | None,
    retrieval: RetrievalConfig,
    stride: int,
    batch_size: int,
    threads: int | None,
    seed: int,
    progress: bool,
    say: Callable[[str], object],
) -> tuple[LLMTable, dict[str, Any]]:
    """The π_LLM table for this run and a record of where it came from."""
    start = time.perf_counter()
    if via == "planner" and scorer_model_id:
        model_id = scorer_model_id
    else:
        model_id = "random" if llm == "random" else local_model_id(llm_model)
    if llm_table is not None:
        probe = load_checked(llm_table, {}, train.n_users, train.n_items)
        expected: dict[str, Any] = {
            "dataset": train.name,
            "model": model_id,
            "prompt_version": None if llm == "random" else PROMPT_VERSION,
            "K": retrieval.k,
            "stride": stride,
        }
        if "train_digest" in probe.fingerprint:  # computed by reference_table: must be this training set
            expected["train_digest"] = train_digest(train)
        table = load_checked(llm_table, expected, train.n_users, train.n_items)
        say(f"π_LLM: {llm_table} ({table.fingerprint.get('model')}, K={table.k})")
        return table, {"path": str(llm_table), "source": "given", "fingerprint": table.fingerprint}
    if llm == "random":
        table = random_llm_table(
            train.user_sequences(), train.n_items, retrieval.k, dataset=train.name, seed=seed, stride=stride
        )
        say(f"π_LLM: random stand-in (K={retrieval.k}), not an LLM")
        return table, {"path": None, "source": "random", "fingerprint": table.fingerprint}
    if via == "planner":
        factory: Callable[[], ChoiceScorer] = lambda: scorer  # noqa: E731
    else:
        factory = lambda: local_scorer(llm_model, num_threads=threads)  # noqa: E731
    res = reference_table(
        train,
        split=split,
        model_id=model_id,
        scorer_factory=factory,
        retrieval=retrieval,
        stride=stride,
        batch_size=batch_size,
        progress=progress,
        log=say,
    )
    how = "loaded from the cache" if res.cached else "computed and cached"
    say(f"π_LLM: {how} in {res.seconds:.1f} s ({res.path})")
    return res.table, {
        "path": str(res.path),
        "source": "cache" if res.cached else "computed",
        "seconds": round(time.perf_counter() - start, 2),
        "fingerprint": res.table.fingerprint,
    }


def _train_loop(
    algo: Any,
    parts: Any,
    rule: Relevance,
    k: int,
    head_fraction: float,
    iterations: int,
    eval_every: int,
    run: RunDir,
    progress: bool,
    metric: str,
) -> tuple[tuple[float, int], Any, list[dict[str, float]]]:
    """``algo.train()`` ``iterations`` times; validation every ``eval_every`` and at the end; the best
    iteration's checkpoint in ``run/checkpoint`` and its actor module returned."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    history: list[dict[str, float]] = []
    best, best_module = (-math.inf, 0), None
    ckpt = run.file("checkpoint")
    rec = LAACRecommender(algo.inference_module()).fit(parts.train)  # states once; the module changes
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("LAAC", total=iterations)
        for it in range(1, iterations + 1):
            start = time.perf_counter()
            result = algo.train()
            stats = result.get("learners", {}).get("default_policy", {})
            row: dict[str, float] = {"iteration": it, "seconds": round(time.perf_counter() - start, 3)}
            for key in (*LOSS_KEYS, *POLICY_KEYS, "num_updates"):
                if key in stats:
                    row[key] = float(stats[key])
            if it % eval_every == 0 or it == iterations:
                module = algo.inference_module()
                rec.module = module
                value = evaluate_ranking(
                    rec, parts, relevance=rule, k=k, on="valid", head_fraction=head_fraction, name="laac"
                ).metrics[metric]
                row[f"valid_{metric}"] = value
                if value > best[0]:
                    best, best_module = (value, it), copy.deepcopy(module)
                    tmp = run.file(".checkpoint.tmp")
                    shutil.rmtree(tmp, ignore_errors=True)
                    algo.save_to_path(tmp)
                    shutil.rmtree(ckpt, ignore_errors=True)
                    tmp.rename(ckpt)
                bar.update(
                    task, description=f"LAAC valid {metric} {value:.4f} (best {best[0]:.4f} @ {best[1]})"
                )
            history.append(row)
            bar.advance(task)
    return best, best_module, history


def _plot(history: list[dict[str, float]], run: RunDir, metric: str, dataset: str) -> None:
    """Three PNGs: loss terms, validation metric, and the policy's mass on π_LLM / tail and entropy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def panels(keys: tuple[str, ...], filename: str, title: str) -> None:
        keys = tuple(key for key in keys if any(key in row for row in history))
        if not keys:
            return
        cols = min(3, len(keys))
        rows = (len(keys) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
        for ax, key in zip(axes.flat, keys):
            pts = [(row["iteration"], row[key]) for row in history if key in row]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None)
            ax.set_title(key, fontsize=10)
            ax.set_xlabel("iteration", fontsize=8)
        for ax in list(axes.flat)[len(keys) :]:
            ax.axis("off")
        fig.suptitle(f"{dataset} LAAC: {title}")
        fig.tight_layout()
        fig.savefig(run.file(filename), dpi=110)
        plt.close(fig)

    panels(LOSS_KEYS, "curves_losses.png", "loss terms")
    panels((f"valid_{metric}",), "curves_valid.png", f"validation {metric}")
    panels(POLICY_KEYS, "curves_policy.png", "policy mass and critic values")
