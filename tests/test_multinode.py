"""Several raylets on one machine (``ray.cluster_utils.Cluster``) standing for a cluster's node types,
each advertising rayrec's custom resources (``rayrec.cluster_resources``): a head, three rollout nodes
(one ``rollout`` slot each) and a "gpu" node (``learner`` and ``planner`` slots; no real GPU here).

Proved: LERL's EnvRunners (planner round_robin: no LLM) spread over distinct rollout nodes and its
remote Learner lands on the learner node; a planner Serve deployment lands on the planner node; a
LERL iteration and a LAAC iteration (remote Learner on the learner node, offline data) complete across
the nodes; removing the raylet under one EnvRunner mid-training is survived with
``restart_failed_env_runners=True``: the next iterations complete and the runner comes back on the
spare rollout node.

The cluster needs its own Ray, and the test session already runs one (``ray_session``), so the body
runs in a child process (this file as a script) that prints one JSON line; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

MARK = "MULTINODE-RESULT "
WORLD = {"n_users": 60, "n_items": 50, "n_categories": 5, "mean_interactions": 10, "seed": 3}


def _run_child(tmp_path: Path, mode: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "0"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(tmp_path), mode],
        capture_output=True, text=True, timeout=540, env=env,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    assert proc.returncode == 0 and lines, (proc.returncode, proc.stdout[-3000:], proc.stderr[-6000:])
    return json.loads(lines[-1][len(MARK) :])


def _check_placement(r: dict) -> None:
    rollout, gpu = set(r["rollout_nodes"]), r["gpu_node"]
    assert r["planner_node"] == gpu
    assert r["laac_learner_nodes"] == [gpu] and r["laac_iteration_updates"] > 0
    # EnvRunners: one per rollout node (each node has one rollout slot), none elsewhere
    assert len(r["runner_nodes"]) == 2 and len(set(r["runner_nodes"])) == 2
    assert set(r["runner_nodes"]) <= rollout
    assert r["lerl_learner_nodes"] == [gpu]
    assert r["lerl_first_iteration_env_steps"] > 0


def test_cluster_places_actors_by_node_type(tmp_path) -> None:
    r = _run_child(tmp_path, "fast")
    _check_placement(r)
    print(f"multinode child (fast): {r['seconds']:.1f} s")


@pytest.mark.slow
def test_cluster_survives_a_lost_rollout_node(tmp_path) -> None:
    r = _run_child(tmp_path, "full")
    _check_placement(r)
    # the lost node hosted a runner; the next iterations completed; the runner came back elsewhere
    assert r["removed_node"] in r["runner_nodes"]
    assert r["iterations_after_removal"] >= 2
    assert all(steps > r["lerl_first_iteration_env_steps"] for steps in r["env_steps_after_removal"])
    assert r["healthy_runners_after"] == 2
    assert r["removed_node"] not in r["runner_nodes_after"]
    assert set(r["runner_nodes_after"]) <= set(r["rollout_nodes"])
    print(f"multinode child (full): {r['seconds']:.1f} s")


# --- the child process ------------------------------------------------------------------------------------


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _values(results: list) -> list:
    return [getattr(x, "get", lambda x=x: x)() if hasattr(x, "ok") else x for x in results]


def _lerl(env_config: dict) -> object:
    from rayrec.algorithms.lerl import LERLConfig
    from rayrec.cluster_resources import pin_to_node_types

    config = (
        LERLConfig()
        .environment(env_config=env_config)
        .training(planner="round_robin", train_batch_size_per_learner=64, minibatch_size=64, num_epochs=1)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4, num_cpus_per_env_runner=0.5)
        .learners(num_learners=1, num_cpus_per_learner=0.5)
        .fault_tolerance(
            restart_failed_env_runners=True,
            env_runner_health_probe_timeout_s=10,
            env_runner_restore_timeout_s=60,
        )
        .debugging(seed=0)
    )
    return pin_to_node_types(config).build_algo()


def _laac(root: Path) -> object:
    from rayrec.algorithms.laac import LAACConfig, random_llm_table
    from rayrec.cluster_resources import pin_to_node_types
    from rayrec.data import leave_last_out, make_world
    from rayrec.data.logged_mdp import write_logged_mdp

    ds = make_world(**WORLD).dataset
    split = leave_last_out(ds)
    info = write_logged_mdp(split.train, root / "eps", history_len=4, rows_per_file=200)
    table = random_llm_table(split.train.user_sequences(), ds.n_items, 6, dataset=info.dataset, seed=0)
    table.save(root / "pi.npz")
    config = (
        LAACConfig()
        .offline_data(input_=str(root / "eps"), dataset_num_iters_per_learner=3)
        .training(llm_table=str(root / "pi.npz"), K=6, train_batch_size_per_learner=32)
        .learners(num_learners=1, num_cpus_per_learner=0.5)
        .debugging(seed=0)
    )
    return pin_to_node_types(config).build_algo()


def _env_steps(result: dict) -> int:
    return int(result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0))


def main(root: Path, mode: str) -> None:
    t0 = time.perf_counter()
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from rayrec.algorithms.lerl import make_lerl_env_config
    from rayrec.cluster_resources import LEARNER, PLANNER, ROLLOUT, node_resources, planner_actor_options
    from rayrec.envs.config import SimConfig

    store = 80 * 1024**2
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "object_store_memory": store, "include_dashboard": False},
    )
    rollout = [
        cluster.add_node(num_cpus=1, resources=node_resources("rollout", 1), object_store_memory=store)
        for _ in range(3)
    ]
    # a "gpu" node: the slots one GPU would give (learner + planner); its CPUs do the work here
    gpu = cluster.add_node(
        num_cpus=2, resources=node_resources("gpu", 2, num_gpus=1), object_store_memory=store
    )
    assert node_resources("gpu", 2, num_gpus=1) == {LEARNER: 1, PLANNER: 1}
    assert node_resources("rollout", 1) == {ROLLOUT: 1}
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    out: dict = {"rollout_nodes": [n.node_id for n in rollout], "gpu_node": gpu.node_id}
    try:
        # the planner: a Serve deployment asking for the planner slot
        serve.start(proxy_location="Disabled")

        @serve.deployment(ray_actor_options=planner_actor_options(num_cpus=0))
        class Planner:
            def __call__(self) -> str:
                return _node_id()

        handle = serve.run(Planner.bind(), name="planner", route_prefix=None)
        out["planner_node"] = handle.remote().result(timeout_s=120)
        serve.shutdown()

        laac = _laac(root)  # before LERL: the offline pipeline gets the free CPUs
        out["laac_learner_nodes"] = _values(laac.learner_group.foreach_learner(lambda learner: _node_id()))
        stats = laac.train().get("learners", {}).get("default_policy", {})
        out["laac_iteration_updates"] = float(stats.get("num_updates", 0.0))
        laac.stop()
        del laac

        env_config = make_lerl_env_config(
            "synthetic", None, SimConfig(seed=0, max_turn=8), loader_options=WORLD
        )
        algo = _lerl(env_config)
        group = algo.env_runner_group
        out["runner_nodes"] = group.foreach_env_runner(lambda r: _node_id(), local_env_runner=False)
        out["lerl_learner_nodes"] = _values(algo.learner_group.foreach_learner(lambda learner: _node_id()))
        out["lerl_first_iteration_env_steps"] = _env_steps(algo.train())
        if mode == "full":  # lose the node under the second runner, then keep training
            victim = out["runner_nodes"][1]
            cluster.remove_node(next(n for n in rollout if n.node_id == victim), allow_graceful=False)
            out["removed_node"] = victim
            steps = [_env_steps(algo.train()) for _ in range(2)]
            deadline = time.time() + 120
            while group.num_healthy_remote_workers() < 2 and time.time() < deadline:
                steps.append(_env_steps(algo.train()))
            out["iterations_after_removal"] = len(steps)
            out["env_steps_after_removal"] = steps
            out["healthy_runners_after"] = group.num_healthy_remote_workers()
            out["runner_nodes_after"] = group.foreach_env_runner(lambda r: _node_id(), local_env_runner=False)
        algo.stop()
    finally:
        out["seconds"] = time.perf_counter() - t0
        print(MARK + json.dumps(out), flush=True)
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
