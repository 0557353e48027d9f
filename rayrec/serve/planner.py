"""The planner: one Ray Serve deployment that hosts one LLM backend for the whole cluster.

Every EnvRunner (LERL) and every offline data worker (LAAC) asks the same replica(s), so the model is
loaded once per replica rather than once per worker, concurrent calls are fused into one forward pass by
``@serve.batch``, and repeated questions are answered from an LRU cache without touching the model.
The same app also speaks OpenAI's ``/v1/completions`` (see ``openai_route.py``) so outside tools and the
``openai`` backend can reach it over HTTP.

Callers should go through ``rayrec.llm.planner_client.PlannerClient``, which adds timeouts and the fallback.

Threads: the model runs in worker threads (so the event loop keeps batching), and scoring, generation
and the OpenAI routes can be in flight at once. They share one model and one tokenizer, and HF fast
tokenizers keep padding/truncation state in the shared Rust object (a concurrent padded and unpadded
call fails with "Unable to create tensor … padding"), so every backend call in the replica holds one
lock (``Planner.run_backend``). On CPU the calls would compete for the same cores anyway.

Errors: a ``RayrecError`` from the backend is a caller's bug (a prompt over the context, an empty
choice). One bad request must not fail the others fused into its batch, so a failed batch is re-run
request by request; each request gets its own answer or its own error, errors are never cached, and
the error reaches the caller through Serve (``PlannerClient`` re-raises it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ray import serve
from ray.serve import metrics
from ray.serve.handle import DeploymentHandle

from rayrec.errors import ConfigError, RayrecError
from rayrec.llm.planner_client import DEFAULT_APP_NAME
from rayrec.serve.openai_route import OpenAIRoute, openai_app


@dataclass
class PlannerConfig:
    """Every knob of the planner deployment; the defaults run on a 2-core laptop with the embedded model.

    For vLLM on a GPU: ``backend="vllm"``, ``ray_actor_options={"num_cpus": 1, "num_gpus": 1}`` and the
    engine settings (``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``) in
    ``backend_kwargs``.
    """

    app_name: str = DEFAULT_APP_NAME
    backend: str = "transformers"
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    # Fixed replica count, or None when ``autoscaling_config`` decides (min_replicas, max_replicas,
    # target_ongoing_requests, ... as in ray.serve.config.AutoscalingConfig).
    num_replicas: int | None = 1
    autoscaling_config: dict[str, Any] | None = None
    # A small CPU share so the replica fits beside EnvRunners on 2 cores; num_gpus for vLLM.
    ray_actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 0.5})
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.01
    # Must be ≥ max_batch_size or batches never fill (Serve's default of 5 caps them silently).
    max_ongoing_requests: int = 64
    cache_size: int = 4096
    # torch intra-op threads in the replica; None keeps Ray's OMP_NUM_THREADS (1 for num_cpus ≤ 1).
    torch_threads: int | None = None
    # HTTP prefix of the OpenAI-compatible route; only bound when Serve's proxy is on.
    route_prefix: str = "/"

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be ≥ 1, not {self.max_batch_size}")
        if self.max_ongoing_requests < self.max_batch_size:
            raise ConfigError(
                f"max_ongoing_requests {self.max_ongoing_requests} < max_batch_size {self.max_batch_size}:"
                " batches could never fill; raise max_ongoing_requests"
            )
        if (self.num_replicas is None) == (self.autoscaling_config is None):
            raise ConfigError("set exactly one of num_replicas and autoscaling_config (the other to None)")
        if self.cache_size < 0:
            raise ConfigError(f"cache_size must be ≥ 0 (0 turns the cache off), not {self.cache_size}")


class LRUCache:
    """A bounded dict that forgets the least recently used answer; size 0 stores nothing."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: Hashable, value: Any) -> None:
        if self.capacity == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class ReplicaStats:
    """In-replica counters behind ``Planner.stats()``; Prometheus gets the same through Serve metrics."""

    def __init__(self, window: int = 2048) -> None:
        self.requests: Counter[str] = Counter()
        self.cache_hits = 0
        self.cache_misses = 0
        self.batch_sizes: Counter[int] = Counter()
        self.latencies_ms: deque[float] = deque(maxlen=window)  # recent requests only

    def as_dict(self) -> dict[str, Any]:
        n_batches = sum(self.batch_sizes.values())
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        looked_up = self.cache_hits + self.cache_misses
        return {
            "requests": dict(self.requests),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_rate": self.cache_hits / looked_up if looked_up else 0.0,
            "batches": n_batches,
            "batch_size_mean": (sum(k * v for k, v in self.batch_sizes.items()) / n_batches)
            if n_batches
            else 0.0,
            "batch_size_max": max(self.batch_sizes, default=0),
            "batch_size_hist": dict(sorted(self.batch_sizes.items())),
            "latency_ms_p50": float(np.percentile(lat, 50)),
            "latency_ms_p95": float(np.percentile(lat, 95)),
        }


@serve.deployment(name="Planner")
@serve.ingress(openai_app)
class Planner(OpenAIRoute):
    """Hosts one backend; ``score`` and ``generate`` take one prompt each and are batched inside."""

    def __init__(self, config: PlannerConfig) -> None:
        from rayrec.llm import make_backend

        if config.torch_threads is not None:
            import torch

            torch.set_num_threads(config.torch_threads)
        self.config = config
        self.backend = make_backend(config.backend, **config.backend_kwargs)
        self.model_id = self.backend.model_id
        self.cache = LRUCache(config.cache_size)
        self._stats = ReplicaStats()
        self._backend_lock = threading.Lock()
        for batched in (self._score_batch, self._generate_batch):
            batched.set_max_batch_size(config.max_batch_size)
            batched.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self._m_batch = metrics.Histogram(
            "rayrec_planner_batch_size",
            description="prompts per backend call",
            boundaries=[1, 2, 4, 8, 16, 32, 64, 128],
            tag_keys=("call",),
        )
        self._m_cache = metrics.Counter(
            "rayrec_planner_cache", description="LRU cache look-ups", tag_keys=("call", "result")
        )
        self._m_latency = metrics.Histogram(
            "rayrec_planner_latency_ms",
            description="request latency inside the replica (queue + batch wait + model)",
            boundaries=[5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
            tag_keys=("call",),
        )

    async def score(self, prompt: str, choices: Sequence[str]) -> np.ndarray:
        """log P(choice | prompt) for each allowed answer (float64, in the order given)."""
        key = ("score", self.model_id, prompt, tuple(choices))
        return await self._cached("score", key, lambda: self._score_batch((prompt, tuple(choices))))

    async def generate(
        self, prompt: str, max_tokens: int = 64, temperature: float = 0.0, seed: int | None = None
    ) -> str:
        """Free text, e.g. a reflection. Only reproducible answers (greedy, or seeded) are cached."""
        request = (prompt, max_tokens, temperature, seed)
        if temperature > 0.0 and seed is None:
            return await self._timed("generate", self._generate_batch(request))
        key = ("generate", self.model_id, *request)
        return await self._cached("generate", key, lambda: self._generate_batch(request))

    def stats(self) -> dict[str, Any]:
        """This replica's counters (requests, cache, batch sizes, latency) and the backend's token counts."""
        return {
            "model_id": self.model_id,
            "replica": serve.get_replica_context().replica_tag,
            "cache_entries": len(self.cache),
            **self._stats.as_dict(),
            "backend": dict(self.backend.stats),
            "config": asdict(self.config),
        }

    async def run_backend(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread, holding the replica's one backend lock (see module doc)."""

        def locked() -> Any:
            with self._backend_lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    async def _cached(self, call: str, key: Hashable, compute: Any) -> Any:
        hit = self.cache.get(key)
        self._m_cache.inc(tags={"call": call, "result": "hit" if hit is not None else "miss"})
        if hit is not None:
            self._stats.cache_hits += 1
            return await self._timed(call, _ready(hit))
        self._stats.cache_misses += 1
        value = await self._timed(call, compute())
        self.cache.put(key, value)
        return value

    async def _timed(self, call: str, awaitable: Any) -> Any:
        start = time.perf_counter()
        value = await awaitable
        if isinstance(value, BaseException):  # this request's own error (see _per_request); never cached
            raise value
        ms = (time.perf_counter() - start) * 1e3
        self._stats.requests[call] += 1
        self._stats.latencies_ms.append(ms)
        self._m_latency.observe(ms, tags={"call": call})
        return value

    def _record_batch(self, call: str, size: int) -> None:
        self._stats.batch_sizes[size] += 1
        self._m_batch.observe(size, tags={"call": call})

    async def _per_request(self, fn: Callable[..., list[Any]], *columns: list[Any]) -> list[Any]:
        """``fn`` over the whole batch; if it raises a RayrecError, over each request alone, so each
        gets its own answer or its own exception (returned as the value; ``_timed`` raises it)."""
        try:
            return await self.run_backend(fn, *columns)
        except RayrecError as exc:
            if len(columns[0]) == 1:
                return [exc]
        out: list[Any] = []
        for i in range(len(columns[0])):
            try:
                out += await self.run_backend(fn, *[col[i : i + 1] for col in columns])
            except RayrecError as exc:
                out.append(exc)
        return out

    # Batch sizes are reset from the config in __init__; these decorator values are only placeholders.
    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _score_batch(self, requests: list[tuple[str, tuple[str, ...]]]) -> list[np.ndarray]:
        self._record_batch("score", len(requests))
        prompts = [p for p, _ in requests]
        choices = [list(c) for _, c in requests]
        # The model runs in a worker thread so the event loop keeps queueing the next batch meanwhile.
        return await self._per_request(self.backend.score_choices, prompts, choices)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _generate_batch(self, requests: list[tuple[str, int, float, int | None]]) -> list[str]:
        self._record_batch("generate", len(requests))
        # One backend call per (max_tokens, temperature, seed) setting; callers rarely mix them.
        out: list[str | None] = [None] * len(requests)
        groups: dict[tuple[int, float, int | None], list[int]] = {}
        for i, (_, *setting) in enumerate(requests):
            groups.setdefault(tuple(setting), []).append(i)
        for (max_tokens, temperature, seed), idx in groups.items():

            def run(prompts: list[str], m: int = max_tokens, t: float = temperature, s: Any = seed) -> list:
                return self.backend.generate(prompts, m, t, s)

            texts = await self._per_request(run, [requests[i][0] for i in idx])
            for i, text in zip(idx, texts):
                out[i] = text
        return out


async def _ready(value: Any) -> Any:
    return value


def build_app(config: PlannerConfig) -> serve.Application:
    """The planner app with replica, batching and resource settings taken from ``config``."""
    options: dict[str, Any] = {
        "ray_actor_options": config.ray_actor_options,
        "max_ongoing_requests": config.max_ongoing_requests,
    }
    if config.autoscaling_config is not None:
        options["autoscaling_config"] = config.autoscaling_config
    else:
        options["num_replicas"] = config.num_replicas
    return Planner.options(**options).bind(config)


def deploy(config: PlannerConfig, blocking: bool = False) -> DeploymentHandle:
    """Start (or update) the planner app on the connected Ray cluster and return its handle.

    Serve must already be started (``serve.start``) where the HTTP proxy matters; otherwise Serve's
    defaults apply. The call returns once the replicas are healthy (the model is loaded).
    """
    return serve.run(
        build_app(config), name=config.app_name, route_prefix=config.route_prefix, blocking=blocking
    )
