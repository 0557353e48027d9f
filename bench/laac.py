"""LAAC's learner throughput beside RLlib's built-in BC, and (``--llm``) the π_LLM precompute.

Speed: LAAC and RLlib's own BC (``BCConfig``: MARWIL's learner with β = 0 and its offline loop) train
on the same episodes (the dataset's leave-last-out train split, written by ``rayrec.data.logged_mdp``),
with the same batch size and the same network for BC as LAAC's actor (``rayrec.algorithms.baselines.bc``),
for each encoder (GRU, SASRec). LAAC trains three such networks (actor, twin critics) plus two EMA
targets, so the ratio LAAC/BC measures LAAC's extra work; the issue's target is >= 0.3x, the aim 0.5x.

Each (method, encoder) runs in its own process with its own local Ray (``num_learners=0``: the learner
is that process), so its memory figure is its own:

- ``build``: ``config.build_algo()``; ``first train``: the first ``Algorithm.train()``, which starts
  RLlib's Ray Data pipeline (read parquet, map through ``OfflinePreLearner``, materialise): start-up,
  reported apart and excluded from the rates, like ``--warmup`` further iterations;
- ``train/it`` and ``samples/s (iter)``: wall time of the next ``--iters`` ``train()`` calls, each one
  minibatch of ``--batch`` transitions (sampling from the materialised data + learner update);
- ``update/it`` and ``samples/s (learner)``: the ``LearnerGroup.update`` part of those calls alone
  (timed around the call), i.e. the learner's own throughput;
- ``peak RSS``: the process's peak resident set (``VmHWM`` of /proc/self/status) after the run, and
  its growth over the RSS just before ``build_algo``. Ray's own processes (GCS, raylet, the Ray Data
  mapper actor, the object store) are not included.

LAAC's timed iterations are adversarial steps (``bc_warmstart_steps`` = the warm-up iterations, actor
updated every step); its π_LLM table here is ``random_llm_table`` with the same K, since the learner's
cost does not depend on the probabilities. ``--llm`` times the real π_LLM precompute for the dataset
with the embedded model (``rayrec.algorithms.laac.reference_policy.reference_table``) into a fresh cache
directory, then a second call that loads it from the cache.

Run: ``.venv/bin/python bench/laac.py [--dataset ml-100k] [--iters 100] [--warmup 5] [--batch 256]
[--encoders gru sasrec] [--threads 2] [--llm]``. Figures depend on the machine's load: the load average
is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("bc", "laac")


def _proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    return float("nan")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prepare(args: argparse.Namespace, root: Path) -> dict:
    """Episodes and a stand-in π_LLM table for the dataset's leave-last-out train split."""
    from rayrec.algorithms.laac import random_llm_table
    from rayrec.data import leave_last_out, load_dataset
    from rayrec.data.logged_mdp import write_logged_mdp

    ds = load_dataset(args.dataset)
    train = leave_last_out(ds).train
    info = write_logged_mdp(train, root / "episodes", history_len=args.history_len)
    table = random_llm_table(train.user_sequences(), train.n_items, args.k, dataset=info.dataset)
    table.save(root / "pi_llm.npz")
    return {"users": info.n_users, "items": info.n_items, "transitions": info.n_transitions}


def child(args: argparse.Namespace) -> None:
    """One (method, encoder) measurement; prints one JSON line."""
    import ray
    import torch

    torch.set_num_threads(args.threads)
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        object_store_memory=400 * 1024**2,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
    )
    root = Path(args.root)
    eps = str(root / "episodes")
    if args.method == "bc":
        from rayrec.algorithms.baselines.bc import bc_config

        config = bc_config(eps, encoder=args.encoder, train_batch_size_per_learner=args.batch)
    else:
        from rayrec.algorithms.laac import LAACConfig

        config = (
            LAACConfig()
            .offline_data(input_=eps)
            .training(
                llm_table=str(root / "pi_llm.npz"),
                K=args.k,
                encoder=args.encoder,
                train_batch_size_per_learner=args.batch,
                bc_warmstart_steps=1 + args.warmup,
                actor_update_interval=1,
            )
        )
    rss_before = _proc_status_mb("VmRSS")
    tick = time.perf_counter()
    algo = config.build_algo()
    build_s = time.perf_counter() - tick

    update_times: list[float] = []
    update = algo.learner_group.update

    def timed_update(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        out = update(*a, **kw)
        update_times.append(time.perf_counter() - t)
        return out

    algo.learner_group.update = timed_update  # instance attribute: only this algorithm's calls
    tick = time.perf_counter()
    algo.train()
    first_s = time.perf_counter() - tick
    for _ in range(args.warmup):
        algo.train()
    update_times.clear()
    tick = time.perf_counter()
    for _ in range(args.iters):
        algo.train()
    wall = time.perf_counter() - tick
    params = sum(
        p.numel()
        for p in algo.learner_group._learner.module["default_policy"].parameters()
        if p.requires_grad
    )
    algo.stop()
    n = args.iters * args.batch
    print(
        json.dumps(
            {
                "method": args.method,
                "encoder": args.encoder,
                "build_s": build_s,
                "first_train_s": first_s,
                "train_s_per_it": wall / args.iters,
                "samples_per_s_iter": n / wall,
                "update_s_per_it": sum(update_times) / len(update_times),
                "samples_per_s_learner": n / sum(update_times),
                "peak_rss_mb": _proc_status_mb("VmHWM"),
                "rss_growth_mb": _proc_status_mb("VmHWM") - rss_before,
                "trainable_params": params,
            }
        ),
        flush=True,
    )
    ray.shutdown()


def llm_precompute(args: argparse.Namespace) -> None:
    """π_LLM for all of the dataset's train users with the embedded model: computed, then cached."""
    from rayrec.algorithms.laac.reference_policy import local_model_id, local_scorer, reference_table
    from rayrec.data import leave_last_out, load_dataset

    train = leave_last_out(load_dataset(args.dataset)).train
    cache = Path(args.llm_cache or tempfile.mkdtemp(prefix="rayrec-bench-pi-llm-"))
    kw = dict(
        split="leave_last_out",
        model_id=local_model_id(None),
        scorer_factory=lambda: local_scorer(num_threads=args.threads),
        cache_dir=cache,
    )
    first = reference_table(train, force=True, **kw)
    second = reference_table(train, **kw)
    stats = first.table.fingerprint.get("stats", {})
    print(
        f"\nπ_LLM precompute ({args.dataset}, embedded model, {args.threads} torch threads; load {_load()}):"
    )
    print(f"  computed: {first.seconds:8.1f} s  {json.dumps(stats)}")
    print(f"  cached:   {second.seconds:8.2f} s  (cached={second.cached}, {second.path})")
    print(f"  load average after: {_load()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--encoders", nargs="+", default=["gru", "sasrec"], choices=["gru", "sasrec"])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--iters", type=int, default=100, help="timed train() calls per method")
    p.add_argument("--warmup", type=int, default=5, help="untimed train() calls after the first")
    p.add_argument("--history-len", type=int, default=10)
    p.add_argument("--k", type=int, default=20, help="π_LLM candidates per row (LAAC's K)")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the learner process")
    p.add_argument("--llm", action="store_true", help="also time the π_LLM precompute and a cached load")
    p.add_argument("--llm-cache", default=None, help="cache dir for --llm (default: a fresh temp dir)")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "ENCODER"), help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.method, args.encoder = args.child
        child(args)
        return

    print(f"load average at start: {_load()}  (cores: {os.cpu_count()})")
    with tempfile.TemporaryDirectory(prefix="rayrec-bench-laac-") as tmp:
        root = Path(tmp)
        shape = prepare(args, root)
        print(
            f"{args.dataset}: {shape['users']} users, {shape['items']} items, {shape['transitions']} "
            f"transitions; batch {args.batch}, N {args.history_len}, K {args.k}, {args.iters} timed "
            f"iterations after 1 + {args.warmup} warm-up; torch threads {args.threads}"
        )
        rows = []
        for encoder in args.encoders:
            for method in METHODS:
                cmd = [sys.executable, __file__, "--child", method, encoder, "--root", str(root)]
                for flag in ("batch", "iters", "warmup", "k", "threads"):
                    cmd += [f"--{flag}", str(getattr(args, flag))]
                cmd += ["--history-len", str(args.history_len)]
                env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": str(args.threads)}
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
                if out.returncode != 0 or line is None:
                    sys.exit(f"{method}/{encoder} failed:\n{out.stderr[-3000:]}")
                rows.append(json.loads(line))
                print(f"  done {method}/{encoder} (load {_load()})", flush=True)

    head = (
        f"{'encoder':8}{'method':8}{'params':>10}{'build s':>9}{'1st train s':>12}{'train ms/it':>12}"
        f"{'samples/s':>11}{'update ms/it':>13}{'learner s/s':>12}{'peak RSS MB':>12}{'growth MB':>10}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(
            f"{r['encoder']:8}{r['method']:8}{r['trainable_params']:>10,}{r['build_s']:>9.1f}"
            f"{r['first_train_s']:>12.1f}{1000 * r['train_s_per_it']:>12.1f}{r['samples_per_s_iter']:>11.0f}"
            f"{1000 * r['update_s_per_it']:>13.1f}{r['samples_per_s_learner']:>12.0f}"
            f"{r['peak_rss_mb']:>12.0f}{r['rss_growth_mb']:>10.0f}"
        )
    print("\nLAAC / BC throughput (target >= 0.3x, aim 0.5x):")
    for encoder in args.encoders:
        by = {r["method"]: r for r in rows if r["encoder"] == encoder}
        it = by["laac"]["samples_per_s_iter"] / by["bc"]["samples_per_s_iter"]
        ln = by["laac"]["samples_per_s_learner"] / by["bc"]["samples_per_s_learner"]
        print(f"  {encoder:7} per train() iteration {it:.2f}x   learner update alone {ln:.2f}x")
    print(f"\nload average at end: {_load()}")
    if args.llm:
        llm_precompute(args)


if __name__ == "__main__":
    main()
