"""Simulator speed: the batched core (B users per numpy step) beside a one-user-at-a-time gym loop,
then the vector env RLlib's EnvRunners step, alone and inside RLlib.

All run the same rules on the ml-100k catalog (1,682 items, 19 genres) with the cached MF response
model, random actions and finished sessions restarting at once. Actions are drawn before timing.
Run: ``.venv/bin/python bench/env_throughput.py [--batch 1024] [--seconds 2] [--no-rllib]``.
Targets of issue #3 (2 cores): batched core >= 100k user-steps/s at batch 1024, and >= 20x the gym loop.
Our own bars, not the issue's: RecSimVectorEnv (NEXT_STEP autoreset) at 64 envs >= 10x the gym loop, and
an RLlib EnvRunner with 64 envs sampling >= 1.5x faster in VECTOR_ENTRY_POINT mode than in SYNC mode
(RLlib's own per-env Python work per step, not the simulator, bounds that ratio).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rayrec.algorithms.baselines.flat_ppo import flat_ppo_config
from rayrec.data.registry import load_dataset
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.config import SimConfig
from rayrec.envs.core import BatchedRecSim
from rayrec.envs.quit_models import QUIT_MODELS
from rayrec.envs.recsim_env import RecSimEnv
from rayrec.envs.recsim_vector_env import RecSimVectorEnv
from rayrec.envs.registration import make_env_config

TARGET_BATCHED = 100_000
TARGET_RATIO = 20.0
VECTOR_ENVS = 64
TARGET_VECTOR_RATIO = 10.0
TARGET_RLLIB_RATIO = 1.5


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


def vector_rate(env: RecSimVectorEnv, seconds: float, rng: np.random.Generator) -> float:
    """User-steps/s; steps that reset a row count too, as RLlib's EnvRunner pays for them as well."""
    actions = rng.integers(0, env.core.n_items, (64, *env.action_space.shape))
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            env.step(a)
        steps += len(actions)
    return steps * env.num_envs / (time.perf_counter() - start)


def rllib_rate(mode: str, seconds: float) -> float:
    """Env steps/s sampled by one local RLlib EnvRunner (PPO's module, exploring) with 64 envs."""
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    env_config = make_env_config("ml-100k", sim=SimConfig(quit_model="temper"))
    config = flat_ppo_config(
        env_config, num_env_runners=0, num_envs_per_env_runner=VECTOR_ENVS, gym_env_vectorize_mode=mode
    )
    runner = SingleAgentEnvRunner(config=config)
    try:
        runner.sample(num_timesteps=10 * VECTOR_ENVS)  # warm-up: first forward passes, episode objects
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            steps += sum(len(e) for e in runner.sample(num_timesteps=100 * VECTOR_ENVS))
        return steps / (time.perf_counter() - start)
    finally:
        runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--no-rllib", action="store_true", help="skip the RLlib EnvRunner comparison")
    args = parser.parse_args()
    data = load_dataset("ml-100k")
    model, path = cached_response_model("ml-100k")
    print(f"ml-100k: {data.n_items} items, {data.n_categories} genres; response model {path}")
    print(f"{'quit model':<16}{'batched user-steps/s':>22}{'gym loop steps/s':>18}{'ratio':>8}   targets")
    rng = np.random.default_rng(0)
    gym_rates = {}
    for name in QUIT_MODELS:
        cfg = SimConfig(quit_model=name)
        fast = batched_rate(BatchedRecSim(model, data.categories, cfg), args.batch, args.seconds, rng)
        slow = gym_rates[name] = gym_rate(RecSimEnv(model, data.categories, cfg), args.seconds, rng)
        ratio = fast / slow
        ok = "ok" if fast >= TARGET_BATCHED and ratio >= TARGET_RATIO else "MISSED"
        print(
            f"{name:<16}{fast:>22,.0f}{slow:>18,.0f}{ratio:>7.0f}x   "
            f">= {TARGET_BATCHED:,}/s and >= {TARGET_RATIO:.0f}x: {ok}"
        )
    print(f"\n{'quit model':<16}{f'vector env ({VECTOR_ENVS}) steps/s':>28}{'vs gym loop':>13}   target")
    for name in QUIT_MODELS:
        env = RecSimVectorEnv(VECTOR_ENVS, model, data.categories, SimConfig(quit_model=name))
        rate = vector_rate(env, args.seconds, rng)
        ratio = rate / gym_rates[name]
        ok = "ok" if ratio >= TARGET_VECTOR_RATIO else "MISSED"
        print(f"{name:<16}{rate:>28,.0f}{ratio:>12.1f}x   >= {TARGET_VECTOR_RATIO:.0f}x: {ok}")
    if args.no_rllib:
        return
    sync, vector = rllib_rate("sync", args.seconds), rllib_rate("vector_entry_point", args.seconds)
    ratio = vector / sync
    ok = "ok" if ratio >= TARGET_RLLIB_RATIO else "MISSED"
    print(f"\nRLlib EnvRunner, {VECTOR_ENVS} envs, PPO module, temper quit: env steps/s sampled")
    print(f"  SYNC (one-user envs in a row) {sync:>12,.0f}")
    print(f"  VECTOR_ENTRY_POINT            {vector:>12,.0f}   {ratio:.1f}x   >= {TARGET_RLLIB_RATIO}x: {ok}")


if __name__ == "__main__":
    main()
