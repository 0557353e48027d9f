"""LAAC's learner throughput beside RLlib's built-in BC, and (``--llm``) the π_LLM precompute.

Speed: LAAC and RLlib's own BC (``BCConfig``: MARWIL's learner with β = 0 and its offline loop) train
on the same episodes (the dataset's leave-last-out train split, written by ``rayrec.data.logged_mdp``),
with the same batch size and the same network for BC as LAAC's actor (``rayrec.algorithms.baselines.bc``),
for each encoder (GRU, SASRec). LAAC trains three such networks (actor, twin critics) plus two EMA
targets, so the ratio LAAC/BC measures LAAC's extra work; the issue's target is >= 0.3x, the aim 0.5x.

Both methods of an encoder run in one process with its own local Ray (``num_learners=0``: the learner
is that process). Each is built, started and warmed up in turn, then their timed ``train()`` calls
alternate (order flipping each round), so a change in the machine's load hits both alike and the
ratio stays meaningful on a shared machine:

- ``build``: ``config.build_algo()``; ``1st train``: the first ``Algorithm.train()``, which starts
  RLlib's Ray Data pipeline (read parquet, map through ``OfflinePreLearner``, materialise): start-up,
  reported apart and excluded from the rates, like ``--warmup`` further iterations;
- ``train ms/it`` and ``samples/s``: wall time of ``--iters`` timed ``train()`` calls, each one
  minibatch of ``--batch`` transitions (sampling from the materialised data + learner update);
- ``update ms/it`` and ``learner s/s``: the ``LearnerGroup.update`` part of those calls alone
  (timed around the call), i.e. the learner's own throughput;
- memory: ``growth MB`` is the process's RSS (``VmRSS``, /proc/self/status) after the method's
  warm-up minus just before its ``build_algo`` (its learner, module, optimizer state and in-process
  data); ``peak RSS MB`` is the process's peak resident set (``VmHWM``) at the end, shared by the
  methods of a process. ``--separate`` runs each method in its own process instead, so the peak is
  its own (the rates are then measured at different times). Ray's own processes (GCS, raylet, the
  Ray Data mapper actor, the object store) are not counted.

LAAC's timed iterations are adversarial steps (``bc_warmstart_steps`` = the warm-up iterations, actor
updated every step); its π_LLM table here is ``random_llm_table`` with the same K, since the learner's
cost does not depend on the probabilities. ``--llm`` times the real π_LLM precompute for the dataset
with the embedded model (``rayrec.algorithms.laac.reference_policy.reference_table``) into a fresh cache
directory, then a second call that loads it from the cache.

Run: ``.venv/bin/python bench/laac.py [--dataset ml-100k] [--iters 100] [--warmup 5] [--batch 256]
[--encoders gru sasrec] [--threads 2] [--separate] [--llm]``. Figures depend on the machine's load:
the load average is printed at the start and the end.
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


def _config(method: str, args: argparse.Namespace, root: Path):  # noqa: ANN202
    eps = str(root / "episodes")
    if method == "bc":
        from rayrec.algorithms.baselines.bc import bc_config

        return bc_config(eps, encoder=args.encoder, train_batch_size_per_learner=args.batch)
    from rayrec.algorithms.laac import LAACConfig

    return (
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


class _Timed:
    """An algorithm with its LearnerGroup.update calls timed (instance attribute: only its own calls)."""

    def __init__(self, algo) -> None:  # noqa: ANN001
        self.algo, self.update_s, self.train_s = algo, [], []
        update = algo.learner_group.update

        def timed_update(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            out = update(*a, **kw)
            self.update_s.append(time.perf_counter() - t)
            return out

        algo.learner_group.update = timed_update

    def train(self) -> float:
        t = time.perf_counter()
        self.algo.train()
        return time.perf_counter() - t


def child(args: argparse.Namespace) -> None:
    """The methods of one encoder in one process: each built, started and warmed up in turn (build
    time, first train() and RSS growth are its own), then their timed train() calls interleaved
    (order alternating), so a change in the machine's load hits every method alike. Prints one JSON
    line per method."""
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
    runs: dict[str, dict] = {}
    for method in args.methods:
        rss_before = _proc_status_mb("VmRSS")
        tick = time.perf_counter()
        timed = _Timed(_config(method, args, root).build_algo())
        build_s = time.perf_counter() - tick
        first_s = timed.train()
        for _ in range(args.warmup):
            timed.train()
        timed.update_s.clear()
        module = timed.algo.learner_group._learner.module["default_policy"]
        runs[method] = {
            "timed": timed,
            "build_s": build_s,
            "first_train_s": first_s,
            "rss_growth_mb": _proc_status_mb("VmRSS") - rss_before,
            "trainable_params": sum(p.numel() for p in module.parameters() if p.requires_grad),
        }
    for i in range(args.iters):
        order = args.methods if i % 2 == 0 else args.methods[::-1]
        for method in order:
            runs[method]["timed"].train_s.append(runs[method]["timed"].train())
    n = args.iters * args.batch
    for method, run in runs.items():
        timed = run.pop("timed")
        timed.algo.stop()
        wall, upd = sum(timed.train_s), sum(timed.update_s)
        row = {
            "method": method,
            "encoder": args.encoder,
            **run,
            "train_s_per_it": wall / args.iters,
            "samples_per_s_iter": n / wall,
            "update_s_per_it": upd / args.iters,
            "samples_per_s_learner": n / upd,
            "peak_rss_mb": _proc_status_mb("VmHWM"),
        }
        print(json.dumps(row), flush=True)
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
    p.add_argument(
        "--separate",
        action="store_true",
        help="one process per method (exact per-method peak RSS; rates then taken at different times)",
    )
    p.add_argument("--child", nargs=2, metavar=("METHODS", "ENCODER"), help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.methods, args.encoder = args.child[0].split(","), args.child[1]
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
        jobs = [(tuple(METHODS), e) for e in args.encoders]
        if args.separate:
            jobs = [((m,), e) for e in args.encoders for m in METHODS]
        for methods, encoder in jobs:
            cmd = [sys.executable, __file__, "--child", ",".join(methods), encoder, "--root", str(root)]
            for flag in ("batch", "iters", "warmup", "k", "threads"):
                cmd += [f"--{flag}", str(getattr(args, flag))]
            cmd += ["--history-len", str(args.history_len)]
            env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": str(args.threads)}
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if out.returncode != 0 or len(lines) != len(methods):
                sys.exit(f"{'+'.join(methods)}/{encoder} failed:\n{out.stderr[-3000:]}")
            rows += [json.loads(x) for x in lines]
            print(f"  done {'+'.join(methods)}/{encoder} (load {_load()})", flush=True)

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
