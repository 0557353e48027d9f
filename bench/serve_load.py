"""Load on the recommender endpoint over loopback, beside the same requests answered in-process.

Prints, for ``POST /recommend`` with a LAAC checkpoint:
(a) the in-process baseline: the same requests, one at a time, through ``RecommenderCore`` (validation,
    model input, forward pass, masking, top-k, JSON) without Serve, HTTP or batching;
(b) closed-loop load steps at rising concurrency (default 1, 8, 32, 50, 64 clients, 15 s each after a
    2 s warm-up): QPS, p50/p95/p99 latency, error rate, and the ratios to (a), so Serve's overhead
    shows; target on 2 cores: p99 < 100 ms at 50 clients with 0 errors;
(c) one replica killed (``ray.kill`` of the Serve replica actor) under 8 clients: the errors seen and the
    time until answers come back;
(d) the load average before and after (the machine may be shared: read the figures with it).

Without ``--checkpoint`` a small LAAC is trained first on ML-100K (leave-last-out train split, a random
π_LLM table; a few iterations: the policy's quality is not what is measured). Everything listens on
127.0.0.1 only, every step is bounded in time and in requests, and the script stops by itself.

Run: ``.venv/bin/python bench/serve_load.py [--checkpoint DIR] [--steps 1,8,32,50,64] [--step-seconds 15]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("OMP_NUM_THREADS", "1")

APP = "recommender_bench"
HOST = "127.0.0.1"


def train_small(root: Path, iterations: int) -> str:
    """A LAAC checkpoint on ML-100K's train split (returns its path)."""
    from rayrec.algorithms.laac import LAACConfig, random_llm_table
    from rayrec.data import leave_last_out, load_dataset
    from rayrec.data.logged_mdp import write_logged_mdp

    ds = load_dataset("ml-100k")
    train = leave_last_out(ds).train
    info = write_logged_mdp(train, root / "episodes", history_len=10)
    table = random_llm_table(train.user_sequences(), ds.n_items, 20, dataset=info.dataset, seed=0)
    table.save(root / "pi_llm.npz")
    config = (
        LAACConfig()
        .offline_data(input_=str(root / "episodes"))
        .training(llm_table=str(root / "pi_llm.npz"), K=20, embed_dim=64, bc_warmstart_steps=1)
    )
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            algo.train()
        path = algo.save_to_path(root / "checkpoint")
    finally:
        algo.stop()
    del algo
    gc.collect()  # close Ray Data's iterator while Ray is still up
    return str(path)


def workload(core: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` request bodies: 70% known users, 30% a history (with ratings and an exclude list) taken
    from a user's training items; k = 10; original ids throughout."""
    rng = np.random.default_rng(seed)
    cat, users = core.catalog, core.users
    bodies = []
    for _ in range(n):
        u = int(rng.integers(len(cat.user_ids)))
        if rng.random() < 0.7 or len(users.items[u]) < 2:
            bodies.append({"user_id": int(cat.user_ids[u]), "k": 10})
            continue
        m = int(rng.integers(1, min(30, len(users.items[u])) + 1))
        items, ratings = users.items[u][-m:], users.ratings[u][-m:]
        exclude = rng.choice(cat.n_items, size=3, replace=False)
        bodies.append(
            {
                "history": [int(cat.item_ids[i]) for i in items],
                "ratings": [float(r) for r in ratings],
                "exclude": [int(cat.item_ids[i]) for i in exclude],
                "k": 10,
            }
        )
    return bodies


def summarise(latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    lat = np.asarray(latencies) * 1e3
    n = len(lat) + errors
    pct = np.percentile(lat, [50, 95, 99]) if len(lat) else [float("nan")] * 3
    return {
        "requests": n,
        "qps": len(lat) / seconds if seconds > 0 else float("nan"),
        "p50": pct[0],
        "p95": pct[1],
        "p99": pct[2],
        "error_rate": errors / n if n else 0.0,
        "errors": errors,
    }


def direct(core: Any, bodies: list[dict[str, Any]], seconds: float, max_requests: int) -> dict[str, float]:
    """The same requests through the same policy in this process, one at a time."""
    from rayrec.serve.recommender import RecommendRequest

    latencies = []
    start = time.perf_counter()
    for i in range(max_requests):
        t0 = time.perf_counter()
        req = RecommendRequest.model_validate(bodies[i % len(bodies)])
        core.recommend(req).model_dump_json()
        latencies.append(time.perf_counter() - t0)
        if t0 - start > seconds:
            break
    return summarise(latencies, 0, time.perf_counter() - start)


async def load(
    url: str,
    bodies: list[dict[str, Any]],
    clients: int,
    seconds: float,
    max_requests: int,
    on_start: Any = None,
) -> tuple[list[tuple[float, float, str]], float]:
    """``clients`` closed-loop clients for ``seconds``: (start, latency, outcome) per request, where
    outcome is "ok", an HTTP status or an exception name. ``on_start(t0)`` may start a side task."""
    import aiohttp

    payloads = [json.dumps(b).encode() for b in bodies]
    records: list[tuple[float, float, str]] = []
    t_start = time.perf_counter()
    deadline = t_start + seconds
    sent = 0
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=clients), timeout=timeout
    ) as session:
        side = asyncio.ensure_future(on_start(t_start)) if on_start else None

        async def client(c: int) -> None:
            nonlocal sent
            i = c * 997
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                i += 1
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=payloads[i % len(payloads)], headers=headers) as r:
                        await r.read()
                        outcome = "ok" if r.status == 200 else str(r.status)
                except Exception as exc:  # a dropped connection is a result here, not a crash
                    outcome = type(exc).__name__
                records.append((t0, time.perf_counter() - t0, outcome))
                if outcome != "ok":
                    await asyncio.sleep(0.01)  # bounded error rate while the replica is away

        await asyncio.gather(*(client(c) for c in range(clients)))
        if side is not None:
            await side
    return records, time.perf_counter() - t_start


def replica_actor(app: str) -> Any:
    """The app's replica actor, found among Ray's named actors (Serve names them SERVE_REPLICA::…)."""
    import ray

    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["name"].startswith("SERVE_REPLICA::") and f"{app}#" in a["name"]:
            return ray.get_actor(a["name"], namespace=a["namespace"]), a["name"]
    raise RuntimeError(f"no replica actor of app {app!r} found")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="LAAC checkpoint (default: train a small one on ML-100K)")
    p.add_argument("--dataset", help="catalog dataset (default: the checkpoint's)")
    p.add_argument("--dataset-path")
    p.add_argument("--train-iterations", type=int, default=3)
    p.add_argument("--steps", default="1,8,32,50,64", help="client counts, comma-separated")
    p.add_argument("--step-seconds", type=float, default=15.0)
    p.add_argument("--warmup-seconds", type=float, default=2.0)
    p.add_argument("--max-requests", type=int, default=50_000, help="per step")
    p.add_argument("--kill-clients", type=int, default=8)
    p.add_argument("--kill-seconds", type=float, default=30.0)
    p.add_argument("--kill-at", type=float, default=4.0, help="seconds into the kill phase")
    p.add_argument("--no-kill", action="store_true")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-wait-ms", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import ray
    import torch
    from ray import serve

    from rayrec.serve.recommender import RecommenderConfig, RecommenderCore, build_app, resolve

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    ray.init(
        address="local",  # a private Ray, never a cluster someone else started on this machine
        num_cpus=4,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
    )
    tmp = tempfile.TemporaryDirectory(prefix="serve-load-")
    try:
        checkpoint = args.checkpoint
        if checkpoint is None:
            t0 = time.perf_counter()
            checkpoint = train_small(Path(tmp.name), args.train_iterations)
            print(f"trained a small LAAC on ml-100k in {time.perf_counter() - t0:.1f} s: {checkpoint}")
        config = RecommenderConfig(
            checkpoint=checkpoint,
            dataset=args.dataset,
            dataset_path=args.dataset_path,
            num_replicas=args.replicas,
            max_batch_size=args.max_batch_size,
            batch_wait_timeout_s=args.batch_wait_ms / 1e3,
        )
        resolved = resolve(config)
        application = build_app(config, resolved=resolved)
        core = RecommenderCore(*resolved)  # the same policy, catalog and users, in this process
        bodies = workload(core, 2000, args.seed)

        base = direct(core, bodies, seconds=min(10.0, args.step_seconds), max_requests=args.max_requests)
        print(
            f"\n(a) in-process, one at a time: {base['qps']:.0f} req/s, p50 {base['p50']:.2f} ms, "
            f"p95 {base['p95']:.2f} ms, p99 {base['p99']:.2f} ms over {base['requests']} requests"
        )

        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        serve.start(http_options={"host": HOST, "port": port})
        t0 = time.perf_counter()
        serve.run(application, name=APP, route_prefix="/")
        print(f"deployed in {time.perf_counter() - t0:.1f} s at http://{HOST}:{port}")
        url = f"http://{HOST}:{port}/recommend"

        print(
            "\n(b) POST /recommend over loopback, closed loop "
            f"({args.step_seconds:.0f} s per step, batch ≤ {args.max_batch_size}, "
            f"wait {args.batch_wait_ms} ms)"
        )
        cols = ("clients", "requests", "QPS", "p50 ms", "p95 ms", "p99 ms", "errors")
        head = " ".join(f"{c:>{8 if c == 'requests' else 7}}" for c in cols)
        print(head + f" {'p50/in-proc':>11} {'QPS/in-proc':>11}")
        results = {}
        for clients in [int(c) for c in args.steps.split(",")]:
            asyncio.run(load(url, bodies, clients, args.warmup_seconds, args.max_requests))
            records, seconds = asyncio.run(load(url, bodies, clients, args.step_seconds, args.max_requests))
            ok = [lat for _, lat, o in records if o == "ok"]
            r = summarise(ok, len(records) - len(ok), seconds)
            results[clients] = r
            print(
                f"{clients:>7} {r['requests']:>8} {r['qps']:>7.0f} {r['p50']:>7.1f} {r['p95']:>7.1f} "
                f"{r['p99']:>7.1f} {r['error_rate']:>7.1%} {r['p50'] / base['p50']:>11.1f} "
                f"{r['qps'] / base['qps']:>11.2f}"
            )
        if 50 in results:
            r = results[50]
            met = r["p99"] < 100 and r["errors"] == 0
            print(f"target at 50 clients (p99 < 100 ms, 0 errors): p99 {r['p99']:.1f} ms, "
                  f"{r['errors']} errors -> {'met' if met else 'NOT met'}")  # fmt: skip

        if not args.no_kill:
            print(
                f"\n(c) replica killed {args.kill_at:.0f} s into {args.kill_seconds:.0f} s "
                f"of {args.kill_clients} clients"
            )
            killed: dict[str, float] = {}

            async def killer(t_start: float) -> None:
                await asyncio.sleep(args.kill_at)
                actor, name = replica_actor(APP)
                killed["t"] = time.perf_counter()
                killed["name"] = name
                ray.kill(actor, no_restart=True)

            records, seconds = asyncio.run(
                load(url, bodies, args.kill_clients, args.kill_seconds, args.max_requests, on_start=killer)
            )
            t_kill = killed["t"]
            errors = [(t, lat, o) for t, lat, o in records if o != "ok"]
            after_ok = [t + lat for t, lat, o in records if o == "ok" and t > t_kill]
            counts: dict[str, int] = {}
            for _, _, o in errors:
                counts[o] = counts.get(o, 0) + 1
            print(f"killed {killed['name']}")
            print(f"requests {len(records)}, errors {len(errors)} ({json.dumps(counts)})")
            last_error_end = max((t + lat for t, lat, _ in errors), default=t_kill)
            if errors:
                first = min(t for t, _, _ in errors) - t_kill
                print(
                    f"first error {first * 1e3:.0f} ms after the kill, "
                    f"last error ended {last_error_end - t_kill:.2f} s after it"
                )
            back = [t for t in after_ok if t >= last_error_end]
            if back:
                print(
                    f"answers back {min(back) - t_kill:.2f} s after the kill (first success after last error)"
                )
            else:  # not back within the phase: keep asking, one request a second, for up to a minute
                import urllib.request

                back_at = None
                for _ in range(60):
                    try:
                        req = urllib.request.Request(
                            url,
                            data=json.dumps(bodies[0]).encode(),
                            headers={"content-type": "application/json"},
                        )
                        with urllib.request.urlopen(req, timeout=5) as r:
                            if r.status == 200:
                                back_at = time.perf_counter()
                                break
                    except Exception:
                        pass
                    time.sleep(1.0)
                if back_at is None:
                    print("no answer within a minute after the phase")
                else:
                    print(f"answers back {back_at - t_kill:.2f} s after the kill (after the phase ended)")
            status = serve.status().applications[APP]
            print(f"app status after the phase: {status.status.value}")
    finally:
        serve.shutdown()
        ray.shutdown()
        tmp.cleanup()
        after = os.getloadavg()
        print(f"\nload average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")


if __name__ == "__main__":
    main()
