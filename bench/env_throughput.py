"""Simulator speed: the batched core (B users per numpy step) beside a one-user-at-a-time gym loop.

Both run the same rules on the ml-100k catalog (1,682 items, 19 genres) with the cached MF response
model, random actions and finished sessions restarting at once. Actions are drawn before timing.
Run: ``.venv/bin/python bench/env_throughput.py [--batch 1024] [--seconds 2]``.
Targets (issue #3, 2 cores): batched core >= 100k user-steps/s at batch 1024, and >= 20x the gym loop.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rayrec.data.registry import load_dataset
from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.quit_models import QUIT_MODELS
from rayrec.envs.recsim_env import RecSimEnv
from rayrec.envs.response import cached_response_model

TARGET_BATCHED = 100_000
TARGET_RATIO = 20.0


def batched_rate(core: BatchedRecSim, batch: int, seconds: float, rng: np.random.Generator) -> float:
    actions = rng.integers(0, core.n_items, (64, batch, core.config.slate_size))
    core.reset(batch)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            core.step(a)
            core.reset_done()
        steps += len(actions)
    return steps * batch / (time.perf_counter() - start)


def gym_rate(env: RecSimEnv, seconds: float, rng: np.random.Generator) -> float:
    actions = rng.integers(0, env.core.n_items, 4096).tolist()
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        steps += len(actions)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    data = load_dataset("ml-100k")
    model, path = cached_response_model("ml-100k")
    print(f"ml-100k: {data.n_items} items, {data.n_categories} genres; response model {path}")
    print(f"{'quit model':<16}{'batched user-steps/s':>22}{'gym loop steps/s':>18}{'ratio':>8}   targets")
    rng = np.random.default_rng(0)
    for name in QUIT_MODELS:
        cfg = SimConfig(quit_model=name)
        fast = batched_rate(BatchedRecSim(model, data.categories, cfg), args.batch, args.seconds, rng)
        slow = gym_rate(RecSimEnv(model, data.categories, cfg), args.seconds, rng)
        ratio = fast / slow
        ok = "ok" if fast >= TARGET_BATCHED and ratio >= TARGET_RATIO else "MISSED"
        print(
            f"{name:<16}{fast:>22,.0f}{slow:>18,.0f}{ratio:>7.0f}x   "
            f">= {TARGET_BATCHED:,}/s and >= {TARGET_RATIO:.0f}x: {ok}"
        )


if __name__ == "__main__":
    main()
