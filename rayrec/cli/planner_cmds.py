"""``rayrec planner up|status|down``: run the shared LLM planner as a detached Serve app and look at it.

The app must outlive this command, so ``up`` attaches to a running Ray cluster (``--address``, or the
one on this machine) and starts a local head node with ``ray start --head`` when there is none.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import Any

import typer

from rayrec.cli.console import console, render_table
from rayrec.errors import ConfigError

planner_app = typer.Typer(
    help="The shared LLM planner (Ray Serve): start, inspect, stop.", no_args_is_help=True
)

NAME_OPT = typer.Option("planner", "--name", help="Serve app name the workers look the planner up by")
ADDRESS_OPT = typer.Option(
    None, "--address", help="Ray cluster address (default: the cluster on this machine)"
)


def _connect(address: str | None, start_if_missing: bool, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():  # called from a program (or test) that is already connected
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        ray.init(address=address or "auto", log_to_driver=False, logging_level="ERROR")
    except ConnectionError as exc:
        if address is not None or not start_if_missing:
            raise ConfigError(
                f"no Ray cluster at {address or 'this machine'} ({exc}); start one with `ray start --head` "
                "or `rayrec planner up`, or pass --address"
            ) from exc
        cmd = [
            os.path.join(os.path.dirname(sys.executable), "ray"),
            "start",
            "--head",
            "--include-dashboard=false",
        ]
        if num_cpus is not None:
            cmd.append(f"--num-cpus={num_cpus}")
        console.print(f"no Ray cluster here; starting one: {' '.join(cmd)}")
        subprocess.run(cmd, check=True, capture_output=True)
        ray.init(address="auto", log_to_driver=False, logging_level="ERROR")


def _json_object(text: str, option: str) -> dict[str, Any]:
    """A JSON object from the command line, or a ConfigError the CLI prints as one line (exit 2)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{option} is not valid JSON ({exc.msg} at character {exc.pos + 1} of {text!r}); "
            f"""pass an object, e.g. {option} '{{"device": "cpu"}}'"""
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f'{option} must be a JSON object like \'{{"device": "cpu"}}\', not {text!r}')
    return value


@planner_app.command("up")
def up(
    name: str = NAME_OPT,
    address: str = ADDRESS_OPT,
    backend: str = typer.Option("transformers", help="transformers | vllm | openai"),
    model: str = typer.Option(None, help="HF id, local dir or .gguf (default: the embedded SmolLM2)"),
    backend_kwargs: str = typer.Option(
        "{}", help='extra backend settings as JSON, e.g. \'{"device": "cpu"}\''
    ),
    num_replicas: int = typer.Option(1, help="fixed replica count (ignored with --max-replicas)"),
    min_replicas: int = typer.Option(1, help="autoscaling lower bound (with --max-replicas)"),
    max_replicas: int = typer.Option(None, help="turn autoscaling on, up to this many replicas"),
    num_cpus: float = typer.Option(1.0, help="CPUs per replica"),
    num_gpus: float = typer.Option(0.0, help="GPUs per replica (vLLM needs ≥ 1)"),
    max_batch_size: int = typer.Option(16, help="prompts fused into one backend call"),
    batch_wait_ms: float = typer.Option(10.0, help="how long a batch waits to fill"),
    max_ongoing_requests: int = typer.Option(64, help="per replica; ≥ max batch size"),
    cache_size: int = typer.Option(4096, help="LRU entries per replica (0: off)"),
    torch_threads: int = typer.Option(None, help="torch threads in each replica"),
    http_host: str = typer.Option("127.0.0.1", help="OpenAI-compatible route host"),
    http_port: int = typer.Option(8000, help="OpenAI-compatible route port"),
    cluster_cpus: int = typer.Option(None, help="CPUs of the local head node when one is started"),
) -> None:
    """Start (or update) the planner app; it keeps running after this command returns."""
    from ray import serve

    from rayrec.serve.planner import PlannerConfig, deploy

    kwargs = _json_object(backend_kwargs, "--backend-kwargs")
    if model is not None:
        kwargs["model"] = model
    config = PlannerConfig(
        app_name=name,
        backend=backend,
        backend_kwargs=kwargs,
        num_replicas=None if max_replicas else num_replicas,
        autoscaling_config={"min_replicas": min_replicas, "max_replicas": max_replicas}
        if max_replicas
        else None,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
        max_batch_size=max_batch_size,
        batch_wait_timeout_s=batch_wait_ms / 1e3,
        max_ongoing_requests=max_ongoing_requests,
        cache_size=cache_size,
        torch_threads=torch_threads,
    )
    _connect(address, start_if_missing=True, num_cpus=cluster_cpus)
    serve.start(http_options={"host": http_host, "port": http_port})
    with console.status(f"deploying {name} (loading the model)…"):
        deploy(config)
    console.print(
        f"[green]planner {name!r} is up[/]: workers use PlannerClient({name!r}); "
        f"OpenAI-compatible route at http://{http_host}:{http_port}/v1"
    )


@planner_app.command("status")
def status(name: str = NAME_OPT, address: str = ADDRESS_OPT) -> None:
    """Serve state, batch sizes, cache hits, latency (one replica's view) and cluster-wide fallbacks."""
    from ray import serve

    from rayrec.llm.planner_client import fallback_counts, get_handle

    _connect(address, start_if_missing=False)
    apps = serve.status().applications
    if name not in apps:
        raise ConfigError(
            f"no planner app {name!r} on this cluster (apps: {sorted(apps) or 'none'}); "
            "start it with `rayrec planner up`"
        )
    stats = get_handle(name).stats.remote().result(timeout_s=30)
    fallbacks = fallback_counts(name)
    rows = [
        {"metric": "status", "value": str(apps[name].status.value)},
        {"metric": "model", "value": stats["model_id"]},
        {"metric": "replica", "value": stats["replica"]},
        {"metric": "requests", "value": json.dumps(stats["requests"])},
        {"metric": "batches", "value": stats["batches"]},
        {"metric": "batch size mean", "value": round(stats["batch_size_mean"], 2)},
        {"metric": "batch size max", "value": stats["batch_size_max"]},
        {"metric": "cache hit rate", "value": round(stats["cache_hit_rate"], 3)},
        {"metric": "cache hits / misses", "value": f"{stats['cache_hits']} / {stats['cache_misses']}"},
        {"metric": "latency p50 (ms)", "value": round(stats["latency_ms_p50"], 1)},
        {"metric": "latency p95 (ms)", "value": round(stats["latency_ms_p95"], 1)},
        {"metric": "fallbacks (cluster)", "value": sum(fallbacks.values())},
        {"metric": "fallback reasons", "value": json.dumps(fallbacks) if fallbacks else "-"},
        *({"metric": f"backend {k}", "value": v} for k, v in stats["backend"].items()),
    ]
    console.print(render_table(f"planner {name}", rows))


@planner_app.command("down")
def down(name: str = NAME_OPT, address: str = ADDRESS_OPT) -> None:
    """Delete the planner app and its fallback ledger (the Ray cluster keeps running)."""
    import ray
    from ray import serve

    from rayrec.llm.planner_client import LEDGER_NAMESPACE, ledger_name

    _connect(address, start_if_missing=False)
    serve.delete(name)
    with contextlib.suppress(ValueError):  # no ledger means no caller ever fell back
        ray.kill(ray.get_actor(ledger_name(name), namespace=LEDGER_NAMESPACE))
    console.print(f"planner {name!r} deleted")
