"""``rayrec serve CHECKPOINT``: a trained recommender on HTTP (``rayrec.serve.recommender``).

By default it starts a private local Ray, serves until Ctrl-C, then takes everything down. With
``--detach`` it deploys into a running Ray cluster (``--address``, or the one on this machine, started
with ``ray start --head`` when there is none) and returns; the app keeps running (``serve status``,
``serve delete recommender``).
"""

from __future__ import annotations

import os
import signal
import time

import typer

from rayrec.cli.console import console


def serve(
    checkpoint: str = typer.Argument(..., help="folder written by algo.save_to_path (LAAC)"),
    host: str = typer.Option("127.0.0.1", help="HTTP host (0.0.0.0 to listen on every interface)"),
    port: int = typer.Option(8000, help="HTTP port"),
    dataset: str = typer.Option(None, help="catalog dataset name (default: the checkpoint's)"),
    dataset_path: str = typer.Option(None, help="local copy of the dataset, where its loader needs one"),
    episodes: str = typer.Option(None, help="training episodes dir (default: the checkpoint's input)"),
    name: str = typer.Option("recommender", help="Serve app name"),
    route_prefix: str = typer.Option("/", help="HTTP route prefix of the app"),
    num_replicas: int = typer.Option(1, min=1, help="replicas of the recommender"),
    num_cpus: float = typer.Option(0.5, min=0.0, help="CPUs per replica"),
    max_batch_size: int = typer.Option(32, min=1, help="requests fused into one forward pass"),
    batch_wait_ms: float = typer.Option(2.0, min=0.0, help="how long a batch waits to fill"),
    detach: bool = typer.Option(False, "--detach", help="deploy into a Ray cluster and return"),
    address: str = typer.Option(None, help="with --detach: Ray cluster address (default: this machine's)"),
) -> None:
    """Serve a trained policy over HTTP: POST /recommend, GET /healthz, /metadata, /docs."""
    import ray
    from ray import serve as ray_serve

    from rayrec.serve.recommender import RecommenderConfig, build_app, read_checkpoint

    config = RecommenderConfig(
        checkpoint=checkpoint,
        dataset=dataset,
        dataset_path=dataset_path,
        episodes=episodes,
        num_replicas=num_replicas,
        ray_actor_options={"num_cpus": num_cpus},
        max_batch_size=max_batch_size,
        batch_wait_timeout_s=batch_wait_ms / 1e3,
        max_ongoing_requests=max(64, max_batch_size),
    )
    spec = read_checkpoint(checkpoint, episodes)  # a wrong path fails here, before Ray starts
    with console.status(f"loading the {spec.dataset} catalog and {spec.kind} users…"):
        application = build_app(config)
    url = f"http://{host}:{port}{route_prefix.rstrip('/')}"
    if detach:
        from rayrec.cli.planner_cmds import _connect

        _connect(address, start_if_missing=True)
        ray_serve.start(http_options={"host": host, "port": port})
        with console.status(f"deploying {name}…"):
            ray_serve.run(application, name=name, route_prefix=route_prefix)
        console.print(
            f"[green]{spec.kind} recommender {name!r} is up[/] at {url}/recommend (docs: {url}/docs)"
        )
        return
    # Ctrl-C and SIGTERM both end in the cleanup below (a shell's background job starts with SIGINT
    # ignored, and a bare SIGTERM would leave the private Ray's processes behind).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ray_serve.start(http_options={"host": host, "port": port})
        with console.status(f"deploying {name}…"):
            ray_serve.run(application, name=name, route_prefix=route_prefix)
        console.print(
            f"[green]{spec.kind} recommender serving[/] at {url}/recommend (docs: {url}/docs); Ctrl-C stops"
        )
        while True:
            time.sleep(1.0)
    finally:
        ray_serve.shutdown()
        ray.shutdown()
