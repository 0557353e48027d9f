"""LERL training speed with the LLM planner on and off, and where the time goes.

Prints, side by side in one run (ml-100k, category_window, the embedded SmolLM2 planner on CPU):
(a) env-steps/s of LERL training with 1 and 2 EnvRunners, planner ``llm`` (on) and ``none`` (off, the
    same module: flat PPO), and the on/off ratio per runner count;
(b) planner cost per user-step: plans per user-step (from LERLVectorEnv's counters), computed planner
    tokens per user-step (the replica's backend counters: prompt + choice tokens actually run through
    the model; KV reuse is counted apart) against the target of <= 20, and the replica's cache hit rate;
(c) the planner path's tokens/s (computed tokens over the time the EnvRunners waited on plans) against
    the model's raw tokens/s measured as bench/planner.py does (its ``in_process_speed``, on LERL's own
    prompts) [target >= 0.7x];
(d) where the time goes per config: EnvRunner sampling vs learner update (RLlib's timers), the planner's
    share of sampling (the env's own ``planner_ms``) and the replica's latency p50/p95.

Each config trains for about ``--seconds`` (``--seconds-off`` with the planner off) with a small train
batch, so the whole bench takes a few minutes. Run: ``.venv/bin/python bench/lerl.py [--seconds 90]``.
Figures on the shared 2-core machine swing with its load; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import uuid
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def raw_speed_fn():  # noqa: ANN201
    """bench/planner.py's ``in_process_speed`` (raw forward tokens/s outside Ray), reused as is."""
    spec = importlib.util.spec_from_file_location("bench_planner", Path(__file__).with_name("planner.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.in_process_speed


def lerl_prompts(env_config: dict, n: int, n_reflections: int, seed: int = 0) -> list[str]:
    """``n`` LERL planner prompts with random category histories (and template lessons)."""
    from rayrec.algorithms.lerl.planners import PlannerPrompts, compact_reflection

    cats = np.asarray(env_config["categories"], bool)
    candidates = np.flatnonzero(cats.any(axis=0))
    prompts = PlannerPrompts(env_config["category_names"], candidates)
    rng = np.random.default_rng(seed)
    c = len(candidates)
    out = []
    for _ in range(n):
        shown = np.zeros(c)
        shown[rng.choice(c, size=int(rng.integers(1, 6)), replace=False)] = rng.integers(1, 4)
        mean = np.where(shown > 0, rng.uniform(0, 1, c), 0.0)
        lessons = [
            compact_reflection(prompts, int(rng.integers(2, 30)), float(rng.uniform(1, 20)), shown, mean)
            for _ in range(n_reflections)
        ]
        out.append(prompts.prompt(shown, mean, lessons))
    return out


def computed(stats: dict) -> int:
    return int(stats["backend"]["prompt_tokens"] + stats["backend"]["choice_tokens"])


def run_config(env_config: dict, planner: str, runners: int, args: argparse.Namespace, handle) -> dict:  # noqa: ANN001
    from rayrec.algorithms.lerl.train import _kill_pool, iteration_record, lerl_config

    seconds = args.seconds if planner == "llm" else args.seconds_off
    pool = f"bench-pool-{uuid.uuid4().hex[:6]}"
    config = lerl_config(
        env_config,
        planner,
        training={
            "train_batch_size_per_learner": args.batch,
            "minibatch_size": args.batch // 2,
            "num_epochs": 1,
            "n_reflections": args.n_reflections,
            "replan_every": args.replan_every,
            "planner_timeout_s": 120.0,
        },
        num_env_runners=runners,
        num_envs_per_env_runner=args.envs,
        planner_app=args.app,
        pool_name=pool,
    ).env_runners(num_cpus_per_env_runner=0.5, sample_timeout_s=600)
    algo = config.build_algo()
    s0 = handle.stats.remote().result(timeout_s=60) if planner == "llm" else None
    recs = []
    start = time.perf_counter()
    try:
        while not recs or time.perf_counter() - start < seconds:
            # the result's env_runners/lerl counters are this iteration's sums over the runners
            recs.append(iteration_record(algo.train()))
        wall = time.perf_counter() - start
    finally:
        algo.stop()
        _kill_pool(pool)
    s1 = handle.stats.remote().result(timeout_s=60) if planner == "llm" else None
    out = {
        "planner": planner,
        "runners": runners,
        "iterations": len(recs),
        "env_steps": recs[-1]["env_steps"],
        "wall": wall,
        "sample_s": sum(r["sample_s"] for r in recs),
        "learn_s": sum(r["learn_s"] for r in recs),
        "planner_s": sum(r.get("lerl/planner_ms", 0.0) for r in recs) / 1e3,
        "plans": sum(r.get("lerl/plans", 0.0) for r in recs),
        "user_steps": sum(r.get("lerl/env_steps", 0.0) for r in recs),
        "fallbacks": sum(r.get("lerl/planner_fallbacks", 0.0) for r in recs),
    }
    if s0 is not None:
        hits = s1["cache_hits"] - s0["cache_hits"]
        misses = s1["cache_misses"] - s0["cache_misses"]
        out.update(
            tokens=computed(s1) - computed(s0),
            reused=s1["backend"]["prefix_tokens_reused"] - s0["backend"]["prefix_tokens_reused"],
            backend_delta={k: s1["backend"][k] - s0["backend"].get(k, 0) for k in s1["backend"]
                           if isinstance(s1["backend"][k], (int, float))},
            hit_rate=hits / (hits + misses) if hits + misses else float("nan"),
            lat_p50=s1["latency_ms_p50"],
            lat_p95=s1["latency_ms_p95"],
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="training time per config, planner on")
    parser.add_argument("--seconds-off", type=float, default=20.0, help="training time per config, off")
    parser.add_argument("--batch", type=int, default=128, help="train_batch_size_per_learner")
    parser.add_argument("--envs", type=int, default=8, help="users per EnvRunner")
    parser.add_argument("--replan-every", type=int, default=5)
    parser.add_argument("--n-reflections", type=int, default=1, help="N_s")
    parser.add_argument("--threads", type=int, default=1, help="torch threads: raw pass and replica")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--app", default="bench-lerl-planner")
    parser.add_argument("--raw-prompts", type=int, default=16, help="prompts for the raw-speed pass")
    parser.add_argument(
        "--raw-tps", type=float, default=None, help="skip the raw pass and use this tokens/s (a busy machine)"
    )
    args = parser.parse_args()

    import ray
    import torch
    from ray import serve

    from rayrec.algorithms.lerl.planner_env import make_lerl_env_config
    from rayrec.envs.config import SimConfig
    from rayrec.serve.planner import PlannerConfig, deploy

    torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    env_config = make_lerl_env_config("ml-100k", None, SimConfig(seed=0))
    prompts = lerl_prompts(env_config, args.raw_prompts, args.n_reflections)
    if args.raw_tps is None:
        raw_tps, raw_tokens, _ = raw_speed_fn()(prompts, min(16, len(prompts)), args.threads)
        print(f"raw model speed (bench/planner.py's in_process_speed, LERL prompts): {raw_tps:.0f} tokens/s "
              f"over {raw_tokens} tokens", flush=True)  # fmt: skip
    else:
        raw_tps = args.raw_tps
        print(f"raw model speed given (--raw-tps): {raw_tps:.0f} tokens/s", flush=True)

    ray.init(
        address="local", num_cpus=4, include_dashboard=False, object_store_memory=200 * 1024**2,
        log_to_driver=False,
    )  # fmt: skip
    serve.start(proxy_location="Disabled")
    t0 = time.perf_counter()
    handle = deploy(
        PlannerConfig(app_name=args.app, ray_actor_options={"num_cpus": 1}, torch_threads=args.threads)
    )
    print(f"planner deployed in {time.perf_counter() - t0:.0f} s", flush=True)

    rows = []
    for planner in ("none", "llm"):
        for runners in args.runners:
            r = run_config(env_config, planner, runners, args, handle)
            r["steps_per_s"] = r["env_steps"] / r["wall"]
            rows.append(r)
            load = os.getloadavg()[0]
            print(f"  done: planner={planner}, runners={runners}: {r['steps_per_s']:.1f} env steps/s "
                  f"({r['env_steps']} steps, {r['wall']:.0f} s); load {load:.1f}", flush=True)  # fmt: skip
    serve.shutdown()
    ray.shutdown()

    print(f"\nload average at end: {os.getloadavg()}")
    head = (f"{'planner':>8} {'runners':>7} {'steps/s':>8} {'sample s':>8} {'learn s':>8} "
            f"{'planner s':>9} {'plans/step':>10} {'tok/step':>8} {'hit rate':>8} {'path tok/s':>10} "
            f"{'p50 ms':>7} {'p95 ms':>7} {'fallbk':>6}")  # fmt: skip
    print("(a)-(d) per config\n" + head)
    for r in rows:
        per_step = r["plans"] / max(r["user_steps"], 1)
        tok = r.get("tokens")
        tok_step = f"{tok / max(r['user_steps'], 1):8.1f}" if tok is not None else f"{'-':>8}"
        path_tps = tok / (r["planner_s"] / r["runners"]) if tok and r["planner_s"] else float("nan")
        print(
            f"{r['planner']:>8} {r['runners']:>7} {r['steps_per_s']:8.1f} {r['sample_s']:8.1f} "
            f"{r['learn_s']:8.1f} {r['planner_s']:9.1f} {per_step:10.3f} {tok_step} "
            f"{r.get('hit_rate', float('nan')):8.2f} "
            f"{path_tps:10.0f} {r.get('lat_p50', float('nan')):7.0f} {r.get('lat_p95', float('nan')):7.0f} "
            f"{r['fallbacks']:6.0f}"
        )
    print()
    for runners in args.runners:
        on = next(r for r in rows if r["planner"] == "llm" and r["runners"] == runners)
        off = next(r for r in rows if r["planner"] == "none" and r["runners"] == runners)
        print(f"(a) on/off ratio, {runners} EnvRunner(s): {on['steps_per_s']:.2f} / {off['steps_per_s']:.1f} "
              f"= {on['steps_per_s'] / off['steps_per_s']:.3f}   [report]")  # fmt: skip
    for r in (r for r in rows if r["planner"] == "llm"):
        tok_step = r["tokens"] / max(r["user_steps"], 1)
        path_tps = r["tokens"] / (r["planner_s"] / r["runners"]) if r["planner_s"] else float("nan")
        print(f"(b) {r['runners']} runner(s): {tok_step:.1f} computed planner tokens per user-step "
              f"(N_s={args.n_reflections}, replan_every={args.replan_every})   [target <= 20]; "
              f"{r['reused']} prompt tokens reused across choices; cache hit rate {r['hit_rate']:.2f}; "
              f"backend counters {r['backend_delta']}")  # fmt: skip
        print(f"(c) {r['runners']} runner(s): planner path {path_tps:.0f} tokens/s vs raw {raw_tps:.0f} "
              f"= {path_tps / raw_tps:.2f}x   [target >= 0.70x]")  # fmt: skip
        wait = r["planner_s"] / r["runners"]
        print(f"(d) {r['runners']} runner(s): of {r['wall']:.0f} s, sampling {r['sample_s']:.0f} s "
              f"(planner waits {wait:.0f} s per runner), learner {r['learn_s']:.0f} s; "
              f"replica latency p50 {r['lat_p50']:.0f} ms, p95 {r['lat_p95']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
