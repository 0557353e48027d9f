"""Does the planner know anything about genres? Top-3 genre hit rate on ML-100K vs simple baselines.

For each sampled user: the last 10 items before the user's final one become LERL's planner prompt
(category history: genre, times shown, mean rating/5); the planner (the embedded SmolLM2 through the
Serve deployment) returns a distribution over all genres; a hit means the user's final item carries one
of its top-3 genres. Baselines: the 3 genres with the most interactions overall (excluding each user's
final item), and the 3 genres seen most in the user's own last 10 items (ties by overall popularity).

The planner prompt asks for variety (users in the simulator leave when bored), so it is not built to
predict the next genre; the figure shows what the small model does, good or bad. All 943 users take
~10 minutes on 2 cores, so the default is a random sample of 200 users (seed 0); ``--users 0`` runs all.
Run: ``.venv/bin/python bench/planner_quality.py [--users 200] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

HISTORY = 10
TOP = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="random sample size; 0 = all users")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import ray
    from ray import serve

    from rayrec.cli.console import console, render_table
    from rayrec.data import load_dataset
    from rayrec.llm.planner_client import PlannerClient
    from rayrec.llm.prompts import category_stats, planner_prompt
    from rayrec.serve.planner import PlannerConfig, deploy

    ds = load_dataset("ml-100k")
    names = list(ds.category_names)
    seqs = ds.user_sequences()
    ratings = ds.interactions["rating"].to_numpy()
    starts = np.searchsorted(ds.interactions["user"].to_numpy(), np.arange(ds.n_users))
    users = np.array([u for u in range(ds.n_users) if len(seqs[u]) > HISTORY])
    if args.users:
        users = np.sort(
            np.random.default_rng(args.seed).choice(users, size=min(args.users, len(users)), replace=False)
        )

    # Global genre popularity without each user's final item (that is what we predict).
    last_items = np.array([seqs[u][-1] for u in range(ds.n_users)])
    genre_pop = ds.categories[ds.interactions["item"].to_numpy()].sum(0) - ds.categories[last_items].sum(0)
    pop_top = set(np.argsort(-genre_pop, kind="stable")[:TOP])

    prompts, targets, recent_tops = [], [], []
    for u in users:
        items = seqs[u][-HISTORY - 1 : -1]
        r = ratings[starts[u] + len(seqs[u]) - HISTORY - 1 : starts[u] + len(seqs[u]) - 1]
        shown, rewards = [], []
        for item, rating in zip(items, r):
            for g in np.flatnonzero(ds.categories[item]):
                shown.append(names[g])
                rewards.append(float(rating) / 5.0)
        prompts.append(planner_prompt(category_stats(shown, rewards), [], names))
        targets.append(set(np.flatnonzero(ds.categories[seqs[u][-1]])))
        counts = ds.categories[items].sum(0) + genre_pop / (genre_pop.max() + 1)  # ties by popularity
        recent_tops.append(set(np.argsort(-counts, kind="stable")[:TOP]))

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    cfg = PlannerConfig(
        app_name="bench-quality", ray_actor_options={"num_cpus": 1}, torch_threads=args.threads
    )
    deploy(cfg)
    # One deadline covers the whole call, and a fallback (uniform) would be scored as the model's answer:
    # a quality figure wants every answer however slow the machine is (0.05 prompts/s at load 40 here).
    client = PlannerClient(cfg.app_name, timeout_s=24 * 3600.0)
    start = time.perf_counter()
    dists = client.distributions([p.text for p in prompts], [p.choices for p in prompts])
    elapsed = time.perf_counter() - start
    serve.shutdown()
    ray.shutdown()

    llm_hits, pop_hits, recent_hits = [], [], []
    for prompt, dist, target, recent in zip(prompts, dists, targets, recent_tops):
        ids, probs = prompt.to_ids(dist)
        llm_top = set(ids[np.argsort(-probs, kind="stable")[:TOP]])
        llm_hits.append(bool(llm_top & target))
        pop_hits.append(bool(pop_top & target))
        recent_hits.append(bool(recent & target))
    n = len(users)
    rows = [
        {"method": "planner (SmolLM2-135M) top-3", "hit rate": float(np.mean(llm_hits)), "users": n},
        {"method": "genre popularity top-3", "hit rate": float(np.mean(pop_hits)), "users": n},
        {"method": "user's recent genres top-3", "hit rate": float(np.mean(recent_hits)), "users": n},
    ]
    console.print(render_table(f"top-{TOP} genre of the next item, ML-100K ({n} users)", rows, "{:.3f}"))
    se = np.sqrt(np.mean(llm_hits) * (1 - np.mean(llm_hits)) / n)
    console.print(
        f"planner: ±{1.96 * se:.3f} (95% CI half-width); {n} prompts in {elapsed:.0f} s "
        f"({n / elapsed:.2f} prompts/s); popularity top-3 = {[names[g] for g in sorted(pop_top)]}; "
        f"fallbacks {client.stats['fallbacks']}"
        + (" (the planner figure is NOT valid)" if client.stats["fallbacks"] else "")
    )


if __name__ == "__main__":
    main()
