"""Planner serving speed with the embedded SmolLM2 on this machine's CPU.

Prints, with the target next to each figure:
(a) raw model speed: tokens/s of plain forward passes over the workload's prompts, outside Ray, in the
    same batches (max_batch_size prompts, left-padded) the deployment forms;
(b) 64 concurrent planner calls through the deployment: tokens/s, requests/s and the ratio to (a);
(c) batching on vs max_batch_size=1, and the ratio;
(d) prompt tokens whose KV cache was reused across choices (backend stats) and the LRU cache's effect on
    a repeated workload (cold vs warm wall time);
(e) p50/p95 latency of the 64 calls as callers see them.

The workload is LERL's planner prompt: a random category history over ML-100K's 19 genres, scored
against all 19 genres. Run: ``.venv/bin/python bench/planner.py [--calls 64] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western", "unknown",
]  # fmt: skip


def workload(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct planner prompts (distinct so the LRU cache cannot answer the first pass)."""
    from rayrec.llm.prompts import CategoryStat, planner_prompt

    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n):
        shown = rng.choice(GENRES[:-1], size=int(rng.integers(3, 8)), replace=False)
        history = [CategoryStat(g, int(rng.integers(1, 6)), float(rng.uniform(0, 1))) for g in shown]
        prompts.append(planner_prompt(history, [], GENRES).text)
    return prompts


def in_process_speed(prompts: list[str], batch_size: int, threads: int) -> tuple[float, int, float]:
    """Outside Ray, on the same batches the deployment forms: (a) plain forward passes over the
    chat-templated prompts -> (real tokens/s, real tokens); and the backend's own ``score_choices`` over
    all genres -> prompt+choice tokens/s, which splits the serving gap into Serve's cost and scoring's."""
    import torch

    from rayrec.llm.transformers_backend import TransformersBackend

    torch.set_num_threads(threads)
    backend = TransformersBackend(device="cpu")
    tok = backend.tokenizer
    tok.padding_side = "left"
    batches = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]
    encoded = [
        tok([backend.chat_text(p) for p in b], return_tensors="pt", padding=True, add_special_tokens=False)
        for b in batches
    ]
    with torch.inference_mode():
        backend.model(**encoded[0], use_cache=False)  # warm-up: allocator, thread pool
        start = time.perf_counter()
        for enc in encoded:
            backend.model(**enc, use_cache=False)
        raw_elapsed = time.perf_counter() - start
    n_tokens = int(sum(int(enc["attention_mask"].sum()) for enc in encoded))
    before = backend.stats["prompt_tokens"] + backend.stats["choice_tokens"]
    start = time.perf_counter()
    for b in batches:
        backend.score_choices(b, [GENRES] * len(b))
    score_elapsed = time.perf_counter() - start
    scored = backend.stats["prompt_tokens"] + backend.stats["choice_tokens"] - before
    return n_tokens / raw_elapsed, n_tokens, scored / score_elapsed


def concurrent_calls(app: str, prompts: list[str]) -> tuple[float, np.ndarray, int]:
    """(wall s, per-call latency s, fallbacks) of one synchronous client call per prompt, all at once."""
    from rayrec.llm.planner_client import PlannerClient

    client = PlannerClient(app, timeout_s=600)

    def one(prompt: str) -> float:
        start = time.perf_counter()
        client.distribution(prompt, GENRES)
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        latencies = np.array(list(pool.map(one, prompts)))
    return time.perf_counter() - start, latencies, client.stats["fallbacks"]


def model_tokens(stats: dict) -> int:
    return stats["backend"]["prompt_tokens"] + stats["backend"]["choice_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16, help="max_batch_size of the batched deployment")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (raw pass and replica)")
    args = parser.parse_args()

    import ray
    from ray import serve

    from rayrec.serve.planner import PlannerConfig, deploy

    prompts = workload(args.calls)
    raw_tps, raw_tokens, score_tps = in_process_speed(prompts, args.batch, args.threads)
    print(
        f"(a) raw forward, outside Ray: {raw_tps:.0f} tokens/s over {raw_tokens} prompt tokens "
        f"(batches of {args.batch}, {args.threads} threads)   [expected ~450-550 on 2 cores]",
        flush=True,
    )
    print(
        f"    backend.score_choices outside Ray, same batches, {len(GENRES)} choices: {score_tps:.0f} "
        f"prompt+choice tokens/s = {score_tps / raw_tps:.2f}x of (a)   [report: scoring's own cost]",
        flush=True,
    )

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    results = {}
    for label, batch in (("batched", args.batch), ("unbatched", 1)):
        cfg = PlannerConfig(
            app_name=f"bench-{label}",
            ray_actor_options={"num_cpus": 1},
            torch_threads=args.threads,
            max_batch_size=batch,
            batch_wait_timeout_s=0.01,
            max_ongoing_requests=max(64, args.calls),
        )
        handle = deploy(cfg)
        handle.score.remote("warm-up", GENRES[:2]).result(timeout_s=120)
        s0 = handle.stats.remote().result(timeout_s=30)
        wall, lat, fallbacks = concurrent_calls(cfg.app_name, prompts)
        s1 = handle.stats.remote().result(timeout_s=30)
        warm_wall = concurrent_calls(cfg.app_name, prompts)[0] if label == "batched" else float("nan")
        results[label] = {
            "wall": wall,
            "lat": lat,
            "fallbacks": fallbacks,
            "warm": warm_wall,
            "tokens": model_tokens(s1) - model_tokens(s0),
            "reused": s1["backend"]["prefix_tokens_reused"] - s0["backend"]["prefix_tokens_reused"],
            "prompt_tokens": s1["backend"]["prompt_tokens"] - s0["backend"]["prompt_tokens"],
            "batches": s1["batches"] - s0["batches"],
        }
        serve.delete(cfg.app_name)

    b, u = results["batched"], results["unbatched"]
    n = args.calls
    b_tps, u_tps = b["tokens"] / b["wall"], u["tokens"] / u["wall"]
    print(
        f"(b) {n} concurrent calls via the deployment: {b_tps:.0f} tokens/s, {n / b['wall']:.2f} requests/s, "
        f"mean batch {n / max(1, b['batches']):.1f}, fallbacks {b['fallbacks']}; "
        f"ratio to (a) {b_tps / raw_tps:.2f}x   [target >= 0.70x]; to in-process scoring "
        f"{b_tps / score_tps:.2f}x   [Serve's own cost]"
    )
    print(
        f"(c) batching on (max {args.batch}) vs max_batch_size=1: {b_tps:.0f} vs {u_tps:.0f} tokens/s, "
        f"{n / b['wall']:.2f} vs {n / u['wall']:.2f} requests/s, ratio {b_tps / u_tps:.2f}x   "
        "[report; on CPU prefill gains little from batching]"
    )
    naive = b["prompt_tokens"] + b["reused"]
    print(
        f"(d) prefix KV reuse: {b['reused']} prompt tokens not recomputed across {len(GENRES)} choices "
        f"({b['reused'] / naive:.0%} of the {naive} a per-choice pass would run)   [report]"
    )
    print(
        f"    LRU cache, repeated workload: cold {b['wall']:.2f} s, warm {b['warm']:.3f} s, "
        f"speed-up {b['wall'] / b['warm']:.0f}x   [report; warm needs no model time]"
    )
    for label, r in (("batched", b), ("unbatched", u)):
        p50, p95 = np.percentile(r["lat"], [50, 95])
        print(f"(e) latency, {n} concurrent calls, {label}: p50 {p50:.2f} s, p95 {p95:.2f} s   [report]")
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
