"""Train the flat PPO baseline on whatever Ray cluster this process is attached to, and save a checkpoint.

The cluster entrypoint of the RayJob in ``deploy/kuberay/rayjob-train.yaml`` and of
``ray job submit`` / ``ray submit`` on a cluster started from ``cluster.yaml``. Unlike
``bench/ppo_vs_random.py`` it never sizes Ray itself (``ray.init(num_cpus=...)`` is refused when a job
joins an existing cluster), and with ``--pin-node-types`` its EnvRunners ask for the ``rollout``
resource and its Learners for ``learner`` (``rayrec.cluster_resources``), so they land on the rollout
and gpu node types. Without a cluster it starts a local Ray, so the same command runs on a laptop
(leave ``--pin-node-types`` off there: no local node advertises those resources).

The simulator goes to the EnvRunners inside the env_config, so only this driver reads the dataset.

Run: ``python deploy/train_flat_ppo.py --iterations 20 --num-env-runners 2`` (add
``--pin-node-types --num-learners 1 --num-gpus-per-learner 1`` on a cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from rayrec.cluster_resources import pin_to_node_types


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k", help="dataset name (the driver's asset cache)")
    p.add_argument("--iterations", type=int, default=20, help="training iterations")
    p.add_argument("--num-env-runners", type=int, default=2, help="remote EnvRunners (rollout nodes)")
    p.add_argument("--num-envs-per-env-runner", type=int, default=8, help="users simulated per runner")
    p.add_argument("--num-cpus-per-env-runner", type=float, default=1.0, help="CPUs per EnvRunner")
    p.add_argument("--num-learners", type=int, default=0, help="remote Learners (0: in this driver)")
    p.add_argument("--num-gpus-per-learner", type=float, default=0.0, help="GPUs per Learner")
    p.add_argument(
        "--pin-node-types",
        action="store_true",
        help="EnvRunners ask for the `rollout` resource, Learners for `learner` (cluster only)",
    )
    p.add_argument("--quit-model", default="temper", help="simulator quit model")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, else start one)")
    p.add_argument("--out", type=Path, default=Path("runs/flat-ppo"), help="checkpoint directory")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace, env_config: dict[str, Any]) -> Any:
    """The PPO AlgorithmConfig for these arguments (no Ray needed to build it)."""
    from rayrec.algorithms.baselines.flat_ppo import flat_ppo_config

    config = flat_ppo_config(
        env_config,
        num_env_runners=args.num_env_runners,
        num_envs_per_env_runner=args.num_envs_per_env_runner,
        num_cpus_per_env_runner=args.num_cpus_per_env_runner,
        gym_env_vectorize_mode="vector_entry_point",
    ).learners(num_learners=args.num_learners, num_gpus_per_learner=args.num_gpus_per_learner)
    return pin_to_node_types(config) if args.pin_node_types else config


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    from rayrec.envs.config import SimConfig
    from rayrec.envs.registration import make_env_config

    if not ray.is_initialized():  # a caller (notebook, test) may have connected already
        ray.init(address=args.address, log_to_driver=False)
    print(f"cluster resources: {json.dumps(ray.cluster_resources(), sort_keys=True)}", flush=True)
    env_config = make_env_config(args.dataset, sim=SimConfig(quit_model=args.quit_model, seed=args.seed))
    algo = build_config(args, env_config).build_algo()
    try:
        start = time.perf_counter()
        for it in range(1, args.iterations + 1):
            result = algo.train()
            runners = result.get("env_runners", {})
            print(
                f"iter {it:3d}  R_tra {runners.get('episode_return_mean', float('nan')):8.3f}  "
                f"Len {runners.get('episode_len_mean', float('nan')):6.2f}  "
                f"steps {result.get('num_env_steps_sampled_lifetime', 0):>9}  "
                f"{time.perf_counter() - start:7.1f} s",
                flush=True,
            )
        path = algo.save_to_path(str(args.out.resolve()))
        print(f"checkpoint: {path}", flush=True)
    finally:
        algo.stop()


if __name__ == "__main__":
    main()
