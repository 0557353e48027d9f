"""Data-layer and metric speed: ML-100K load, ranking metrics at 100k users, a 1M-user synthetic world.

Each case runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own, not the largest case's.
Run: ``.venv/bin/python bench/data_metrics.py`` (``--quick`` shrinks the synthetic world to 100k users).
Targets (issue #2, on 2 cores): metrics < 2 s; synthetic 1M users x 100k items < 60 s and < 8 GiB peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

GIB = 1024**3


def case_ml100k() -> dict[str, float]:
    """Best of three loads through the registry (cache check + parse + id mapping)."""
    from rayrec.data import load_dataset

    load_dataset("ml-100k")  # fetch into the cache if needed; not timed
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ds = load_dataset("ml-100k")
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "interactions": ds.n_interactions}


def case_metrics(as_lists: bool) -> dict[str, float]:
    """``ranking_report`` on random top-20 lists of 100k users over 5,000 items in 20 categories."""
    from rayrec.eval.metrics import Ragged
    from rayrec.eval.report import ranking_report

    rng = np.random.default_rng(0)
    n_users, n_items, k = 100_000, 5_000, 20
    # k distinct items per row: sorted draws from [0, n-k] plus 0..k-1 are strictly increasing
    topk = np.sort(rng.integers(0, n_items - k + 1, (n_users, k)), axis=1) + np.arange(k)
    topk = rng.permuted(topk, axis=1)
    n_rel = rng.integers(1, 6, n_users)
    indptr = np.concatenate([[0], np.cumsum(n_rel)])
    indices = rng.integers(0, n_items, indptr[-1])
    relevant = (
        [indices[indptr[u] : indptr[u + 1]] for u in range(n_users)] if as_lists else Ragged(indptr, indices)
    )
    popularity = rng.zipf(1.5, n_items).clip(max=100_000)
    categories = rng.random((n_items, 20)) < 0.1
    categories[np.arange(n_items), rng.integers(0, 20, n_items)] = True
    t0 = time.perf_counter()
    report = ranking_report(
        topk, relevant, train_popularity=popularity, categories=categories, n_train_users=n_users
    )
    return {"seconds": time.perf_counter() - t0, "HR@20": report["HR@20"]}


def case_synthetic(n_users: int) -> dict[str, float]:
    from rayrec.data import make_world

    t0 = time.perf_counter()
    world = make_world(n_users=n_users, n_items=100_000, n_categories=20)
    return {"seconds": time.perf_counter() - t0, "interactions": world.dataset.n_interactions}


CASES = {
    "ml100k": case_ml100k,
    "metrics_lists": lambda: case_metrics(as_lists=True),
    "metrics_ragged": lambda: case_metrics(as_lists=False),
    "synthetic_100k": lambda: case_synthetic(100_000),
    "synthetic_1m": lambda: case_synthetic(1_000_000),
}


def run_child(name: str) -> dict[str, float]:
    """Run one case in a fresh interpreter; it prints a JSON line with its figures and peak RSS."""
    proc = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"case {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=sorted(CASES), help="run one case here (used by the parent)")
    parser.add_argument("--quick", action="store_true", help="skip the 1M-user world")
    args = parser.parse_args()
    if args.case:
        out = CASES[args.case]()
        out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
        print(json.dumps(out))
        return

    rows = [
        ("ml-100k load (registry, best of 3)", "ml100k", None, None),
        ("metrics 100k users x top-20, relevant as lists", "metrics_lists", 2.0, None),
        ("metrics 100k users x top-20, relevant as Ragged", "metrics_ragged", 2.0, None),
        ("synthetic 100k users x 100k items", "synthetic_100k", None, None),
    ]
    if not args.quick:
        rows.append(("synthetic 1M users x 100k items", "synthetic_1m", 60.0, 8.0))
    print(f"{'case':52s} {'seconds':>8s} {'target':>8s} {'ratio':>6s} {'peak GiB':>9s} {'target':>7s}  extra")
    for label, name, t_target, mem_target in rows:
        r = run_child(name)
        extra = ", ".join(f"{k}={v:,}" for k, v in r.items() if k not in ("seconds", "peak_rss_gib"))
        print(
            f"{label:52s} {r['seconds']:8.2f} {_fmt(t_target):>8s} {_ratio(r['seconds'], t_target):>6s} "
            f"{r['peak_rss_gib']:9.2f} {_fmt(mem_target):>7s}  {extra}"
        )
    print("ratio = measured / target (< 1 meets the target); peak GiB = the case's own process peak RSS")


def _fmt(target: float | None) -> str:
    return "-" if target is None else f"< {target:g}"


def _ratio(value: float, target: float | None) -> str:
    return "-" if target is None else f"{value / target:.2f}"


if __name__ == "__main__":
    main()
