"""Custom Ray resources that tie rayrec's actors to the node types of a cluster.

Ray places an actor on any node with enough CPU/GPU, so without a tag EnvRunners could fill the GPU
nodes and a Learner could land on a CPU box. Each node type therefore advertises one custom resource
per unit of what it is for, and each actor asks for one unit of its kind:

====================  =====================================  =======================================
actor                 asks for                               advertised by
====================  =====================================  =======================================
EnvRunner             ``{"rollout": 1}``                     rollout (CPU) nodes: one per CPU
Learner               ``{"learner": 1}`` + its GPUs          gpu nodes: one per GPU
planner replica       ``{"planner": 1}`` + its GPUs          gpu nodes: one per GPU
====================  =====================================  =======================================

``cluster.yaml`` (the Ray cluster launcher) and ``deploy/kuberay/`` (RayJob, RayService) declare these
same names; ``tests/test_deploy_configs.py`` checks that they agree with :data:`CUSTOM_RESOURCES`.
The tags are opt-in: a laptop's ``ray.init()`` advertises none of them, so pinning there would leave
every actor pending forever.

This module is a leaf: it imports nothing of rayrec's, so any layer may use it.
"""

from __future__ import annotations

from typing import Any

ROLLOUT = "rollout"
LEARNER = "learner"
PLANNER = "planner"
CUSTOM_RESOURCES: frozenset[str] = frozenset({ROLLOUT, LEARNER, PLANNER})

# Node kind -> the custom resources it advertises, each in the amount of the unit named.
NODE_KINDS: dict[str, dict[str, str]] = {
    "head": {},
    "rollout": {ROLLOUT: "CPU"},
    "gpu": {LEARNER: "GPU", PLANNER: "GPU"},
}


def node_resources(kind: str, num_cpus: int, num_gpus: int = 0) -> dict[str, int]:
    """The custom resources a node of ``kind`` should advertise (integers, as the launcher requires)."""
    if kind not in NODE_KINDS:
        raise ValueError(f"unknown node kind {kind!r}; choose one of {', '.join(NODE_KINDS)}")
    units = {"CPU": num_cpus, "GPU": num_gpus}
    return {name: int(units[unit]) for name, unit in NODE_KINDS[kind].items()}


def env_runner_resources() -> dict[str, float]:
    """``custom_resources_per_env_runner``: one rollout slot per EnvRunner."""
    return {ROLLOUT: 1}


def learner_resources() -> dict[str, float]:
    """``custom_resources_per_learner``: one learner slot per Learner (GPUs are asked for separately)."""
    return {LEARNER: 1}


def planner_actor_options(num_cpus: float = 1.0, num_gpus: float = 0.0) -> dict[str, Any]:
    """``ray_actor_options`` of a planner replica that may only run on a gpu node."""
    return {"num_cpus": num_cpus, "num_gpus": num_gpus, "resources": {PLANNER: 1}}


def pin_to_node_types(config: Any) -> Any:
    """Ask an RLlib ``AlgorithmConfig`` for rollout nodes for its EnvRunners and gpu nodes for its
    remote Learners; returns the same config for chaining.

    Only remote actors are pinned: with ``num_env_runners=0`` or ``num_learners=0`` the work stays in
    the driver, wherever that runs (the head node under ``ray job submit``).
    """
    return config.env_runners(custom_resources_per_env_runner=env_runner_resources()).learners(
        custom_resources_per_learner=learner_resources()
    )
