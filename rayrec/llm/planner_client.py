"""How workers call the planner: a cached handle, a timeout, and a fallback instead of a crash.

LERL's EnvRunners ask the planner once per user session from synchronous code inside remote actors; a
slow, restarting or missing planner must cost them a worse plan, never a failed rollout. So every call
has one deadline (``timeout_s`` for the whole call, however many prompts it carries), and when the
planner is missing (no Serve instance, no app), dead, or late, the call returns the *documented
fallback*:

- ``distribution``: the caller's ``prior`` (e.g. category popularity), renormalised, else uniform;
- ``score_choices``: the log of that same fallback distribution;
- ``generate``: the caller's ``fallback`` text (e.g. a template reflection), else the error is raised.

Each fallback is counted in ``client.stats``, in the Prometheus counter ``rayrec_planner_fallbacks`` and
in a tiny named actor per app that ``rayrec planner status`` reads, so falling back is never silent.

A ``RayrecError`` raised by the backend is not an outage but the caller's bug (a prompt longer than
the model's context, an empty choice): it is re-raised here with its own class and message, never
turned into a fallback. Serve delivers it as a ``RayTaskError`` whose ``cause`` is the original error.
A process not connected to Ray is a set-up bug too (looking the app up would start a new local
cluster): ``ConfigError``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import ray
from ray import serve
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle
from ray.util import metrics

from rayrec.errors import ConfigError, RayrecError
from rayrec.llm import to_distribution

DEFAULT_APP_NAME = "planner"  # the Serve app name of the planner deployment (rayrec.serve.planner)

logger = logging.getLogger(__name__)

LEDGER_NAMESPACE = "rayrec"

_HANDLES: dict[str, DeploymentHandle] = {}
_LEDGERS: dict[str, Any] = {}
_FALLBACK_METRIC: metrics.Counter | None = None

# Default deadline per call. Measured with bench/planner.py on one CPU replica (embedded SmolLM2-135M,
# 2 cores): 64 concurrent planner prompts had p50 27 s and p95 43 s, so a 10 s deadline made most calls
# fall back exactly when the planner was busy. 60 s is ~1.4× that p95: under that load a call still gets
# the model's answer, and a dead or missing planner still costs a rollout at most one minute per call.
# Callers with a lighter load (or a GPU replica) should pass a smaller timeout_s.
DEFAULT_TIMEOUT_S = 60.0


class PlannerUnavailableError(RayrecError):
    """The planner did not answer in time and the caller gave no fallback."""


def get_handle(app_name: str = DEFAULT_APP_NAME) -> DeploymentHandle:
    """The app's handle, looked up once per process: the lookup is a synchronous controller call."""
    if app_name not in _HANDLES:
        _HANDLES[app_name] = serve.get_app_handle(app_name)
    return _HANDLES[app_name]


@ray.remote(num_cpus=0)
class FallbackLedger:
    """Cluster-wide count of fallbacks for one planner app, by reason (timeout, error class name)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, reason: str) -> None:
        self.counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


def ledger_name(app_name: str) -> str:
    return f"{app_name}-fallbacks"


def get_ledger(app_name: str) -> Any:
    """The app's ledger actor, created on first use and detached so it outlives the caller."""
    if app_name not in _LEDGERS:
        _LEDGERS[app_name] = FallbackLedger.options(
            name=ledger_name(app_name), namespace=LEDGER_NAMESPACE, lifetime="detached", get_if_exists=True
        ).remote()
    return _LEDGERS[app_name]


def fallback_distribution(n_choices: int, prior: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """The documented fallback: ``prior`` renormalised over the choices, else uniform."""
    if prior is None:
        return np.full(n_choices, 1.0 / n_choices)
    p = np.asarray(prior, dtype=np.float64)
    if p.shape != (n_choices,) or np.any(p < 0) or p.sum() <= 0:
        raise RayrecError(
            f"fallback prior must hold {n_choices} non-negative weights with a positive sum, got {p!r}"
        )
    return p / p.sum()


class PlannerClient:
    """Synchronous calls to the planner app with a deadline and a fallback; safe inside remote actors.

    Create it where it is used (e.g. in the env's ``__init__`` on the EnvRunner): it only holds the app
    name and looks the handle up lazily, so it pickles into ``env_config`` as well.

    ``timeout_s`` bounds each call as a whole: all of a call's requests go out at once and share one
    deadline, so a call of N prompts waits at most ``timeout_s``, not N × ``timeout_s``. The default
    (``DEFAULT_TIMEOUT_S`` = 60 s) comes from measured latency under load; see its comment.
    """

    def __init__(self, app_name: str = DEFAULT_APP_NAME, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, not {timeout_s}")
        self.app_name = app_name
        self.timeout_s = timeout_s
        self.stats: Counter[str] = Counter()

    def score_choices(
        self,
        prompts: Sequence[str],
        choices: Sequence[Sequence[str]],
        priors: Sequence[Sequence[float] | None] | None = None,
    ) -> list[np.ndarray]:
        """log P(choice | prompt) per prompt; a failed prompt gets the log of its fallback distribution.

        All requests go out before the first wait, so one call with many prompts fills the replica's batch.
        """
        if len(prompts) != len(choices):
            raise ConfigError(
                f"{len(prompts)} prompts but {len(choices)} choice lists; pass one list per prompt"
            )
        priors = priors if priors is not None else [None] * len(prompts)
        if len(priors) != len(prompts):
            raise ConfigError(f"{len(prompts)} prompts but {len(priors)} priors; pass one per prompt")
        results = self._call("score", [(p, list(c)) for p, c in zip(prompts, choices)])
        out = []
        for result, c, prior in zip(results, choices, priors):
            if isinstance(result, BaseException):
                self._count_fallback(result)
                with np.errstate(divide="ignore"):  # a zero prior weight is log-prob -inf
                    result = np.log(fallback_distribution(len(c), prior))
            out.append(np.asarray(result, dtype=np.float64))
        return out

    def distribution(
        self, prompt: str, choices: Sequence[str], prior: Sequence[float] | np.ndarray | None = None
    ) -> np.ndarray:
        """The planner's distribution over ``choices``; ``prior`` (else uniform) when it cannot answer."""
        return self.distributions([prompt], [choices], [prior])[0]

    def distributions(
        self,
        prompts: Sequence[str],
        choices: Sequence[Sequence[str]],
        priors: Sequence[Sequence[float] | np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Many prompts at once (LAAC's offline π_LLM pass), each falling back on its own."""
        logps = self.score_choices(prompts, choices, priors)
        return [to_distribution(lp) for lp in logps]

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
        fallback: str | None = None,
    ) -> list[str]:
        """Free text per prompt; ``fallback`` replaces a failed answer, without it the failure raises."""
        results = self._call("generate", [(p, max_tokens, temperature, seed) for p in prompts])
        out = []
        for result in results:
            if isinstance(result, BaseException):
                if fallback is None:
                    raise PlannerUnavailableError(
                        f"planner app {self.app_name!r} did not answer generate() within {self.timeout_s} s "
                        f"({type(result).__name__}: {result}); see `rayrec planner status` or pass fallback="
                    ) from result
                self._count_fallback(result)
                result = fallback
            out.append(result)
        return out

    def _call(self, method: str, requests: list[tuple[Any, ...]]) -> list[Any]:
        """Each request's value, or the exception that stopped it, all within one deadline.

        A ``RayrecError`` from the backend (the caller's bug) is raised after cancelling the rest.
        """
        if not requests:
            return []
        deadline = time.monotonic() + self.timeout_s
        self.stats["calls"] += len(requests)
        if not ray.is_initialized():
            raise ConfigError(
                "PlannerClient needs a Ray connection: call ray.init(address=...) first (inside Ray "
                "workers and EnvRunners it already exists)"
            )
        try:
            handle = get_handle(self.app_name)
            responses = [getattr(handle, method).remote(*args) for args in requests]
        except (ray.exceptions.RayError, RayServeException) as exc:  # no Serve instance, no such app
            _HANDLES.pop(self.app_name, None)
            return [exc] * len(requests)
        out: list[Any] = []
        for k, response in enumerate(responses):
            try:
                out.append(response.result(timeout_s=max(deadline - time.monotonic(), 0.0)))
                continue
            except TimeoutError as exc:
                _cancel(response)
                error: BaseException = exc
            except (ray.exceptions.RayError, RayServeException) as exc:
                error = exc
                bug = _caller_bug(exc)
                if bug is not None:
                    for pending in responses[k + 1 :]:
                        _cancel(pending)
                    raise bug from (None if bug is exc else exc)
            # Late, replica dead or restarting, app deleted: a fallback, and a fresh lookup next call.
            _HANDLES.pop(self.app_name, None)
            out.append(error)
        return out

    def _count_fallback(self, exc: BaseException) -> None:
        global _FALLBACK_METRIC
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        self.stats["fallbacks"] += 1
        self.stats[f"fallbacks/{reason}"] += 1
        logger.warning("planner %r fell back (%s: %s)", self.app_name, reason, exc)
        if _FALLBACK_METRIC is None:
            _FALLBACK_METRIC = metrics.Counter(
                "rayrec_planner_fallbacks",
                description="planner calls answered by the fallback",
                tag_keys=("app", "reason"),
            )
        _FALLBACK_METRIC.inc(tags={"app": self.app_name, "reason": reason})
        try:
            get_ledger(self.app_name).record.remote(reason)
        except Exception as exc:  # counting must never turn a fallback into a failed rollout
            _LEDGERS.pop(self.app_name, None)
            logger.warning("could not record the fallback in the cluster ledger: %s", exc)


def _cancel(response: Any) -> None:
    """Best-effort cancel. Serve's ``cancel()`` re-raises the request's own failure (e.g.
    ``DeploymentUnavailableError`` for a deleted app) when the request already failed; that failure is
    handled by the caller already."""
    try:
        response.cancel()
    except Exception as exc:
        logger.debug("cancelling a planner request raised %s", exc)


def _caller_bug(exc: BaseException) -> RayrecError | None:
    """The backend's own RayrecError inside a Serve/Ray error, if that is what stopped the request."""
    for candidate in (getattr(exc, "cause", None), exc.__cause__, exc):
        if isinstance(candidate, RayrecError):
            return candidate
    return None


def fallback_counts(app_name: str = DEFAULT_APP_NAME) -> dict[str, int]:
    """Fallbacks recorded cluster-wide for ``app_name`` (empty when none has happened)."""
    try:
        ledger = ray.get_actor(ledger_name(app_name), namespace=LEDGER_NAMESPACE)
    except ValueError:  # no ledger yet means no fallback yet
        return {}
    return ray.get(ledger.snapshot.remote(), timeout=30)
