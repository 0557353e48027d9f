"""cluster.yaml, the KubeRay manifests and the Serve config files, checked offline with Ray's own code.

- cluster.yaml: ``prepare_config`` + ``validate_config`` (what ``ray up`` runs before touching AWS).
- KubeRay: the fields the RayJob/RayService CRDs and KubeRay's webhook-free validation require (lists
  below, taken from ray-project/kuberay ``ray-operator/config/crd/bases/ray.io_{rayjobs,rayservices}.yaml``
  and ``controllers/ray/utils/validation.go``), and each cluster spec turned into an autoscaler config
  by Ray's KubeRay autoscaler (``_derive_autoscaling_config_from_ray_cr``, which validates it too).
- Serve: ``ServeDeploySchema`` (what ``serve deploy`` and KubeRay's serveConfigV2 are parsed with),
  then the app is built the way Serve's controller builds it.
- Custom resources: every node type and worker group advertises exactly what
  ``rayrec.cluster_resources`` says our actors ask for.

No Ray cluster is started and nothing touches the network.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray._common.utils import import_attr
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.schema import ServeDeploySchema

from rayrec.cluster_resources import (
    CUSTOM_RESOURCES,
    NODE_KINDS,
    env_runner_resources,
    learner_resources,
    node_resources,
    planner_actor_options,
)
from rayrec.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
RAYJOB = ROOT / "deploy" / "kuberay" / "rayjob-train.yaml"
RAYSERVICE = ROOT / "deploy" / "kuberay" / "rayservice-planner.yaml"
SERVE_CONFIGS = {
    "local": ROOT / "rayrec" / "serve" / "planner_config.yaml",
    "cluster": ROOT / "rayrec" / "serve" / "planner_config.gpu.yaml",
}
# Where deploy/docker/Dockerfile puts the repository inside the image.
IMAGE_REPO_DIR = "/home/ray/rayrec"
STANDARD = {"CPU", "GPU", "memory", "object_store_memory"}

# Required by the v1 CRDs' openAPIV3Schema (`required:` lists) ...
CRD_REQUIRED = {
    "RayService.spec": {"rayClusterConfig"},  # not rayClusterSpec: that is RayJob's name for it
    "RayClusterSpec": {"headGroupSpec"},
    "HeadGroupSpec": {"template"},
    "WorkerGroupSpec": {"groupName", "minReplicas", "maxReplicas", "template"},
    "PodSpec": {"containers"},
    "Container": {"name"},
}
# ... and by what KubeRay's controllers do with them (validation.go, rayjob/rayservice controllers):
# a RayJob needs an entrypoint (outside InteractiveMode) and one of rayClusterSpec/clusterSelector; a
# RayService needs serveConfigV2 to deploy anything; names are DNS-1035 labels of at most 47
# characters (MaxRayClusterNameLength 53 - 6); rayStartParams are passed to `ray start` (we always set
# them, since they carry our custom resources); a container without an image cannot start.
OPERATOR_REQUIRED = {
    "RayJob.spec": {"entrypoint", "rayClusterSpec"},
    "RayService.spec": {"serveConfigV2", "rayClusterConfig"},
    "HeadGroupSpec": {"rayStartParams", "template"},
    "WorkerGroupSpec": {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"},
    "Container": {"name", "image"},
}
MAX_NAME = 47
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _required(kind: str) -> set[str]:
    return CRD_REQUIRED.get(kind, set()) | OPERATOR_REQUIRED.get(kind, set())


def _load(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1, f"{path.name}: one manifest per file, found {len(docs)}"
    return docs[0]


def _custom(resources: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in resources.items() if k not in STANDARD}


def _expected_custom(kind: str, resources: dict[str, Any]) -> dict[str, int]:
    return node_resources(kind, int(resources.get("CPU", 0)), int(resources.get("GPU", 0)))


def _load_train_script() -> Any:
    spec = importlib.util.spec_from_file_location("train_flat_ppo", ROOT / "deploy" / "train_flat_ppo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- cluster.yaml (Ray cluster launcher)


def _prepared() -> dict[str, Any]:
    return prepare_config(yaml.safe_load(CLUSTER_YAML.read_text()))


def test_cluster_yaml_passes_ray_validation() -> None:
    config = _prepared()
    validate_config(config)  # raises on any schema or consistency error
    types = config["available_node_types"]
    assert set(types) == set(NODE_KINDS)
    assert config["head_node_type"] == "head"
    assert types["head"]["max_workers"] == 0
    for name in ("rollout", "gpu"):
        assert 0 <= types[name]["min_workers"] <= types[name]["max_workers"] <= config["max_workers"]
    assert types["gpu"]["resources"]["GPU"] >= 1
    assert "GPU" not in types["rollout"]["resources"]


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["available_node_types"]["gpu"]["resources"].update(GPU=0.5),  # must be integers
        lambda c: c["available_node_types"]["rollout"].update(instance="c6i"),  # unknown key
        lambda c: c["available_node_types"]["rollout"].pop("node_config"),  # required
        lambda c: c.update(head_node_type="nope"),
    ],
)
def test_cluster_yaml_validation_rejects_a_broken_copy(break_it: Any) -> None:
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    break_it(raw)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_config(prepare_config(copy.deepcopy(raw)))


def test_cluster_yaml_installs_rayrec_torch_first_and_vllm_on_gpu_nodes() -> None:
    config = _prepared()
    assert config["file_mounts"] == {"~/rayrec": "."}, "the repo is synced to ~/rayrec"
    cpu_cmds = config["setup_commands"]
    torch_at = next(i for i, c in enumerate(cpu_cmds) if "torch==" in c)
    rayrec_at = next(i for i, c in enumerate(cpu_cmds) if re.search(r"pip install .*-e \"\$HOME/rayrec\"", c))
    assert torch_at < rayrec_at and "whl/cpu" in cpu_cmds[torch_at]
    # merge_setup_commands puts the common setup in front of the head's own.
    assert config["head_setup_commands"][: len(cpu_cmds)] == cpu_cmds
    gpu = config["available_node_types"]["gpu"]
    assert any('"$HOME/rayrec[vllm]"' in c for c in gpu["worker_setup_commands"])
    assert not any("whl/cpu" in c for c in gpu["worker_setup_commands"])
    assert gpu["docker"]["worker_image"].endswith("-gpu")
    assert config["docker"]["image"].endswith("-cpu")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^vllm = \[", pyproject, re.M), "the vllm extra the GPU nodes install"


def test_cluster_yaml_custom_resources_are_what_our_actors_ask_for() -> None:
    types = _prepared()["available_node_types"]
    seen: set[str] = set()
    for kind, node_type in types.items():
        custom = _custom(node_type["resources"])
        assert custom == _expected_custom(kind, node_type["resources"]), kind
        seen |= set(custom)
    assert seen == CUSTOM_RESOURCES
    # Every actor's request names a resource that some node type advertises.
    asked = set(env_runner_resources()) | set(learner_resources()) | set(planner_actor_options()["resources"])
    assert asked == CUSTOM_RESOURCES


# ---------------------------------------------------------------- KubeRay manifests


def _cluster_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["rayClusterSpec" if manifest["kind"] == "RayJob" else "rayClusterConfig"]


def _check_pod_template(where: str, template: dict[str, Any]) -> None:
    assert _required("PodSpec") <= set(template["spec"]), where
    containers = template["spec"]["containers"]
    assert containers, f"{where}: at least one container"
    for c in containers:
        assert _required("Container") <= set(c), (
            f"{where}: container misses {_required('Container') - set(c)}"
        )
        assert isinstance(c["image"], str) and c["image"], where


@pytest.mark.parametrize(("path", "kind"), [(RAYJOB, "RayJob"), (RAYSERVICE, "RayService")])
def test_kuberay_manifest_has_the_fields_the_crd_requires(path: Path, kind: str) -> None:
    m = _load(path)
    assert m["apiVersion"] == "ray.io/v1"
    assert m["kind"] == kind
    name = m["metadata"]["name"]
    assert DNS1035.match(name) and len(name) <= MAX_NAME, name
    assert _required(f"{kind}.spec") <= set(m["spec"]), (
        f"spec misses {_required(f'{kind}.spec') - set(m['spec'])}"
    )
    spec = _cluster_spec(m)
    assert _required("RayClusterSpec") <= set(spec)
    assert spec["rayVersion"] == "2.60.0", "the Ray version the images carry and pyproject pins"
    head = spec["headGroupSpec"]
    assert _required("HeadGroupSpec") <= set(head)
    assert all(isinstance(v, str) for v in head["rayStartParams"].values()), "rayStartParams are strings"
    _check_pod_template("head", head["template"])
    groups = spec["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["rollout", "gpu"]
    for g in groups:
        assert _required("WorkerGroupSpec") <= set(g), (
            f"{g['groupName']} misses {_required('WorkerGroupSpec') - set(g)}"
        )
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], g["groupName"]
        assert all(isinstance(v, str) for v in g["rayStartParams"].values())
        _check_pod_template(g["groupName"], g["template"])
    gpu_limits = groups[1]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(gpu_limits["nvidia.com/gpu"]) >= 1
    assert "nvidia.com/gpu" not in groups[0]["template"]["spec"]["containers"][0]["resources"]["limits"]


@pytest.mark.parametrize("path", [RAYJOB, RAYSERVICE])
def test_kuberay_groups_advertise_our_custom_resources(path: Path) -> None:
    m = _load(path)
    # What Ray's KubeRay autoscaler makes of the spec: CPUs from container limits, GPUs from
    # nvidia.com/gpu, custom resources parsed from rayStartParams; it runs validate_config itself.
    ray_cr = {"metadata": {"name": m["metadata"]["name"], "namespace": "default"}, "spec": _cluster_spec(m)}
    types = _derive_autoscaling_config_from_ray_cr(ray_cr)["available_node_types"]
    assert set(types) == {"headgroup", "rollout", "gpu"}
    assert types["headgroup"]["resources"]["CPU"] == 0, "the head runs drivers only"
    seen: set[str] = set()
    for group in ("rollout", "gpu"):
        resources = types[group]["resources"]
        assert _custom(resources) == _expected_custom(group, resources), group
        seen |= set(_custom(resources))
    assert _custom(types["headgroup"]["resources"]) == {}
    assert seen == CUSTOM_RESOURCES
    assert types["gpu"]["resources"]["GPU"] >= 1


def test_rayjob_entrypoint_is_a_script_in_this_repo_with_valid_arguments() -> None:
    m = _load(RAYJOB)
    argv = shlex.split(m["spec"]["entrypoint"])
    assert argv[0] == "python" and argv[1].startswith(IMAGE_REPO_DIR + "/")
    script = ROOT / argv[1][len(IMAGE_REPO_DIR) + 1 :]
    assert script == ROOT / "deploy" / "train_flat_ppo.py" and script.is_file()
    assert f". {IMAGE_REPO_DIR}\n" in (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    args = _load_train_script().parse_args(argv[2:])  # argparse exits on an unknown flag
    assert args.pin_node_types
    gpu_group = m["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]
    gpus = int(gpu_group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    assert 0 < args.num_gpus_per_learner <= gpus


@pytest.mark.parametrize("pin", [True, False])
def test_train_script_pins_env_runners_and_learners_to_node_types(pin: bool) -> None:
    module = _load_train_script()
    flags = ["--num-env-runners", "3", "--num-learners", "2", "--num-gpus-per-learner", "1"]
    args = module.parse_args(flags + (["--pin-node-types"] if pin else []))
    config = module.build_config(args, {"sim": {"seed": 0}})
    assert config.num_env_runners == 3 and config.num_learners == 2 and config.num_gpus_per_learner == 1
    assert config.custom_resources_per_env_runner == (env_runner_resources() if pin else {})
    assert config.custom_resources_per_learner == (learner_resources() if pin else {})


# ---------------------------------------------------------------- Serve config files


def _build(serve_config: dict[str, Any]) -> Any:
    """The app as Serve's controller builds it from a config (import_path + args), no cluster needed."""
    (app,) = serve_config["applications"]
    return call_user_app_builder_with_args_if_necessary(import_attr(app["import_path"]), app.get("args", {}))


@pytest.mark.parametrize("flavour", sorted(SERVE_CONFIGS))
def test_serve_config_is_valid_for_serve_deploy_and_builds_the_planner(flavour: str) -> None:
    raw = yaml.safe_load(SERVE_CONFIGS[flavour].read_text())
    schema = ServeDeploySchema.model_validate(raw)
    assert [a.name for a in schema.applications] == ["planner"]
    deployment = _build(raw)._bound_deployment
    assert deployment.name == "Planner"
    options = deployment.ray_actor_options
    if flavour == "cluster":
        assert options == planner_actor_options(num_cpus=1, num_gpus=1)
        assert deployment._deployment_config.autoscaling_config.max_replicas >= 1
    else:  # runs on a laptop's cluster: no custom resource it could wait for forever
        assert not set(options.get("resources", {})) & CUSTOM_RESOURCES
        assert options.get("num_gpus", 0) == 0


def test_planner_builder_refuses_unknown_args() -> None:
    raw = yaml.safe_load(SERVE_CONFIGS["local"].read_text())
    raw["applications"][0]["args"]["max_batchsize"] = 8
    with pytest.raises(ConfigError, match="max_batchsize"):
        _build(raw)


def test_rayservice_serves_the_gpu_planner_config() -> None:
    m = _load(RAYSERVICE)
    text = m["spec"]["serveConfigV2"]
    assert isinstance(text, str), "serveConfigV2 is a YAML string, not a mapping"
    ServeDeploySchema.model_validate(yaml.safe_load(text))
    assert yaml.safe_load(text) == yaml.safe_load(SERVE_CONFIGS["cluster"].read_text())
    head_ports = {
        p["containerPort"]
        for p in m["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert yaml.safe_load(text)["http_options"]["port"] in head_ports
