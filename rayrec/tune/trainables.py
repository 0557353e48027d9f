"""Tune function trainables for LAAC and LERL: a few training steps, the validation metric, a checkpoint,
reported once per Tune iteration, so ASHA can stop a poor trial after its grace period.

LAAC reads its episodes through Ray Data. A Tune trial runs in a placement group that captures child
tasks, and the offline pipeline's read tasks and map actors then wait for bundles nobody reserved
(ray-2.60.md §2.3: "pending: 2 CPU" forever on small machines). So the LAAC trial keeps its one-CPU
bundle for itself (the concurrency limit Tune sees) and runs the algorithm in a worker actor placed
outside the placement group (a node-affinity strategy to the trial's own node, so checkpoints stay
local), where Ray Data schedules as it would in a plain driver. LERL samples in its own process
(``num_env_runners=0``), so it trains inside the trial directly.

Each checkpoint holds the algorithm (``Algorithm.from_checkpoint``), ``tune_state.json`` (the Tune
iteration, for ``Tuner.restore``) and ``probe.npz``: what the policy did on fixed inputs when the
checkpoint was written (LAAC: top-k items of the first users; LERL: greedy actions on a fixed batch of
observations), so a restore can be checked against it (:func:`laac_probe`, :func:`lerl_probe`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROBE_FILE = "probe.npz"
STATE_FILE = "tune_state.json"
PROBE_USERS = 32
PROBE_SEED = 3_000_017  # LERL probe sessions: a stream no training or evaluation uses


# --- LAAC ------------------------------------------------------------------------------------------------


@dataclass
class LAACSweepData:
    """What every LAAC trial shares (prepared once by the runner, shipped through the object store)."""

    episodes: str  # logged MDP (absolute path)
    llm_table: str  # π_LLM .npz (absolute path)
    parts: Any  # rayrec.data Split: train for the states, valid for the metric
    relevance: str
    K: int  # noqa: N815 (the paper's name)
    tail_items: list[int]
    iterations: int = 10
    updates_per_iteration: int = 20
    batch_size: int = 256
    k: int = 10
    head_fraction: float = 0.2
    seed: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)  # LAACConfig knobs not searched


def laac_algorithm_config(knobs: dict[str, Any], data: LAACSweepData) -> Any:
    from rayrec.algorithms.laac import LAACConfig

    config = (
        LAACConfig()
        .offline_data(input_=data.episodes, dataset_num_iters_per_learner=data.updates_per_iteration)
        .training(
            **{**data.fixed, **knobs},
            K=data.K,
            llm_table=data.llm_table,
            tail_items=data.tail_items,
            train_batch_size_per_learner=data.batch_size,
        )
        .debugging(seed=data.seed)
    )
    config.check_knobs()
    return config


def laac_probe(algo_or_module: Any, train: Any, k: int = 10, n_users: int = PROBE_USERS) -> np.ndarray:
    """Top-``k`` items of the first ``n_users`` users (from their train histories) by the policy."""
    from rayrec.algorithms.laac.recommender import LAACRecommender

    module = (
        algo_or_module.inference_module() if hasattr(algo_or_module, "inference_module") else algo_or_module
    )
    rec = LAACRecommender(module).fit(train)
    users = np.arange(min(n_users, train.n_users))
    scores = np.asarray(rec.score(users), dtype=np.float64)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _laac_worker_class() -> Any:
    import ray

    @ray.remote(num_cpus=0, max_restarts=0)
    class LAACWorker:
        """Builds and trains one trial's LAAC outside the trial's placement group."""

        def __init__(self, knobs: dict[str, Any], data: LAACSweepData, restore: str | None) -> None:
            import torch

            from rayrec.algorithms.laac.recommender import LAACRecommender
            from rayrec.eval import Relevance

            torch.set_num_threads(1)
            torch.manual_seed(data.seed)
            self.data = data
            self.rule = Relevance.parse(data.relevance)
            self.algo = laac_algorithm_config(knobs, data).build_algo()
            if restore is not None:
                self.algo.restore_from_path(restore)
            self.rec = LAACRecommender(self.algo.inference_module()).fit(data.parts.train)

        def step(self) -> dict[str, float]:
            from rayrec.eval import evaluate_ranking

            result = self.algo.train()
            stats = result.get("learners", {}).get("default_policy", {})
            self.rec.module = self.algo.inference_module()
            metrics = evaluate_ranking(
                self.rec, self.data.parts, relevance=self.rule, k=self.data.k, on="valid",
                head_fraction=self.data.head_fraction, name="laac",
            ).metrics  # fmt: skip
            out = {f"valid_{name.lower()}": float(v) for name, v in metrics.items() if np.isscalar(v)}
            for key in ("critic_loss", "actor_loss", "pi_mass_llm", "entropy"):
                if key in stats:
                    out[key] = float(stats[key])
            return out

        def save(self, path: str, iteration: int) -> str:
            self.algo.save_to_path(path)
            np.savez(Path(path) / PROBE_FILE, top_k=laac_probe(self.algo, self.data.parts.train, self.data.k))
            (Path(path) / STATE_FILE).write_text(json.dumps({"iteration": iteration}))
            return path

        def stop(self) -> None:
            self.algo.stop()

    return LAACWorker


def laac_trainable(config: dict[str, Any], data: LAACSweepData) -> None:
    """One LAAC trial: ``data.iterations`` Tune iterations of ``updates_per_iteration`` learner updates,
    each reporting validation NDCG@k (``valid_ndcg@10``) and a checkpoint."""
    import ray
    from ray import tune
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)  # not a PG: escapes capture
    worker_cls = _laac_worker_class().options(scheduling_strategy=strategy)
    start, worker = 0, None
    checkpoint = tune.get_checkpoint()
    try:
        if checkpoint is not None:
            with checkpoint.as_directory() as path:
                start = json.loads((Path(path) / STATE_FILE).read_text())["iteration"]
                worker = worker_cls.remote(dict(config), data, str(path))
                ray.get(worker.__ray_ready__.remote())
        else:
            worker = worker_cls.remote(dict(config), data, None)
        for it in range(start + 1, data.iterations + 1):
            metrics = ray.get(worker.step.remote())
            _report_with_checkpoint(metrics, it, lambda p, it=it: ray.get(worker.save.remote(p, it)))
        ray.get(worker.stop.remote())
    finally:
        if worker is not None:
            ray.kill(worker)


def _report_with_checkpoint(metrics: dict[str, Any], iteration: int, save: Any) -> None:
    from ray import tune

    tmp = tempfile.mkdtemp(prefix="rayrec-tune-ckpt-")
    try:
        save(tmp)
        tune.report({**metrics, "iteration": iteration}, checkpoint=tune.Checkpoint.from_directory(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- LERL ------------------------------------------------------------------------------------------------


@dataclass
class LERLSweepData:
    """What every LERL trial shares: the simulator's env_config and the run's budgets."""

    env_config: dict[str, Any]
    planner: str = "round_robin"
    iterations: int = 10
    train_per_iteration: int = 1  # algo.train() calls per Tune iteration
    valid_sessions: int = 50
    eval_batch_size: int = 64
    num_envs_per_env_runner: int = 16
    seed: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)  # LERLConfig/PPO settings not searched
    planner_app: str = "planner"


_INT_KNOBS = ("replan_every", "m", "n_reflections", "actor_update_interval")


def _knobs(config: dict[str, Any]) -> dict[str, Any]:
    return {k: int(v) if k in _INT_KNOBS else float(v) if isinstance(v, (float, np.floating)) else v
            for k, v in config.items()}  # fmt: skip


def lerl_algorithm_config(knobs: dict[str, Any], data: LERLSweepData, pool_name: str | None = None) -> Any:
    from rayrec.algorithms.lerl.train import lerl_config

    return lerl_config(
        data.env_config, data.planner, seed=data.seed, training={**data.fixed, **_knobs(knobs)},
        num_env_runners=0, num_envs_per_env_runner=data.num_envs_per_env_runner,
        planner_app=data.planner_app, pool_name=pool_name,
    )  # fmt: skip


def lerl_probe_observations(env_config: dict[str, Any], lerl: dict[str, Any], n: int = 16) -> dict[str, Any]:
    """A fixed batch of first observations (planned with ``lerl``'s planner) from the probe stream."""
    from rayrec.algorithms.lerl.train import evaluation_env

    env = evaluation_env(env_config, lerl, PROBE_SEED, n)
    obs, _ = env.reset(seed=PROBE_SEED)
    return {key: np.asarray(value) for key, value in obs.items()}


def lerl_probe(module: Any, observations: dict[str, Any]) -> np.ndarray:
    """The module's greedy actions on ``observations``."""
    from rayrec.algorithms.lerl.train import module_policy

    return np.asarray(module_policy(module)(observations, np.arange(len(observations["step"]))))


def lerl_trainable(config: dict[str, Any], data: LERLSweepData) -> None:
    """One LERL trial: ``data.iterations`` Tune iterations of ``train_per_iteration`` PPO iterations,
    each reporting validation R_tra (``valid_R_tra``) on the fixed validation sessions and a checkpoint."""
    import torch
    from ray import tune

    from rayrec.algorithms.lerl.train import VALID_SEED, _kill_pool, evaluate_policy_longterm

    torch.set_num_threads(1)
    torch.manual_seed(data.seed)
    pool = f"lerl-pool-{tune.get_context().get_trial_id()}" if data.planner == "llm" else None
    algo_config = lerl_algorithm_config(config, data, pool)
    settings = algo_config.env_settings()
    algo = algo_config.build_algo()
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as path:
            start = json.loads((Path(path) / STATE_FILE).read_text())["iteration"]
            algo.restore_from_path(path)
    probe_obs = lerl_probe_observations(data.env_config, settings)

    def save(path: str, iteration: int) -> None:
        algo.save_to_path(path)
        np.savez(
            Path(path) / PROBE_FILE,
            actions=lerl_probe(algo.get_module(), probe_obs),
            **{f"obs/{k}": v for k, v in probe_obs.items()},
        )
        (Path(path) / STATE_FILE).write_text(json.dumps({"iteration": iteration}))

    try:
        for it in range(start + 1, data.iterations + 1):
            for _ in range(data.train_per_iteration):
                result = algo.train()
            report, _ = evaluate_policy_longterm(
                algo.get_module(), data.env_config, lerl=settings, sessions=data.valid_sessions,
                seed=VALID_SEED, batch_size=data.eval_batch_size,
            )  # fmt: skip
            metrics = {
                "valid_R_tra": float(report["R_tra"][0]),
                "valid_Len": float(report["Len"][0]),
                "env_steps": int(result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0)),
                "train_return_mean": float(
                    result.get("env_runners", {}).get("episode_return_mean", float("nan"))
                ),
            }
            _report_with_checkpoint(metrics, it, lambda p, it=it: save(p, it))
    finally:
        algo.stop()
        if pool is not None:
            _kill_pool(pool)


def load_probe(checkpoint: str | Path) -> dict[str, np.ndarray]:
    """The probe a trial wrote into ``checkpoint`` (observations under ``obs/<key>``)."""
    with np.load(Path(checkpoint) / PROBE_FILE) as z:
        return {name: z[name] for name in z.files}
