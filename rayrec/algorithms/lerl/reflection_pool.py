"""LERL's reflection pool: finished sessions' lessons, shared by every EnvRunner through one named actor.

At session end an EnvRunner adds ``(reflection F_u, summary, return S_u)``; when it plans for a batch of
users it asks for ``N_s`` reflections per user, drawn with P(u) ∝ exp(α·S_u) (the softmax rule of the
LERL summaries), so lessons from long, rewarding sessions are read most often while every lesson keeps
a chance. ``α = 0`` draws uniformly; a large α reads only the best sessions.

Draws within one user's ``N_s`` are without replacement (successive softmax draws over the entries not
yet taken, i.e. Plackett–Luce), so a prompt never repeats a lesson; users are independent. The pool's
generator is seeded, so a rerun with the same sequence of calls draws the same reflections.

Capacity and eviction are configurable: ``fifo`` forgets the oldest session, ``lowest_return`` the one
with the lowest S_u (the pool then converges on the best sessions seen). The pool logic is a plain
class (:class:`ReflectionPoolState`, unit-testable without Ray); :class:`ReflectionPool` is its actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rayrec.errors import ConfigError

EVICTIONS = ("fifo", "lowest_return")
POOL_NAMESPACE = "rayrec"
DEFAULT_POOL_NAME = "lerl-reflections"


@dataclass(frozen=True)
class PoolSettings:
    """What the pool is built with; the LERL config carries the same values."""

    capacity: int = 1000
    eviction: str = "fifo"
    alpha: float = 1.0
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ConfigError(f"reflection pool capacity must be >= 1, not {self.capacity}")
        if self.eviction not in EVICTIONS:
            raise ConfigError(f"reflection pool eviction must be one of {EVICTIONS}, not {self.eviction!r}")
        if not np.isfinite(self.alpha):
            raise ConfigError(f"alpha must be a finite number, not {self.alpha}")


def softmax_weights(returns: np.ndarray, alpha: float) -> np.ndarray:
    """P(u) = exp(α S_u) / Σ_v exp(α S_v), computed stably (max subtracted)."""
    z = alpha * np.asarray(returns, dtype=np.float64)
    z = z - z.max()
    w = np.exp(z)
    return w / w.sum()


class ReflectionPoolState:
    """The pool itself: bounded, evicting, sampling by the softmax of the returns."""

    def __init__(self, settings: PoolSettings | None = None) -> None:
        self.settings = settings or PoolSettings()
        self.texts: list[str] = []
        self.summaries: list[dict[str, Any]] = []
        self.returns: list[float] = []
        self.rng = np.random.default_rng(self.settings.seed)
        self.n_added = 0
        self.n_evicted = 0
        self.n_sampled = 0
        self.sampled_return_sum = 0.0

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, entries: Sequence[tuple[str, dict[str, Any], float]]) -> int:
        """Add finished sessions ``(reflection, summary, S_u)``; returns the pool size afterwards."""
        for text, summary, ret in entries:
            self.texts.append(str(text))
            self.summaries.append(dict(summary))
            self.returns.append(float(ret))
            self.n_added += 1
            if len(self.texts) > self.settings.capacity:
                drop = 0 if self.settings.eviction == "fifo" else int(np.argmin(self.returns))
                for column in (self.texts, self.summaries, self.returns):
                    del column[drop]
                self.n_evicted += 1
        return len(self.texts)

    def sample(self, n_users: int, k: int) -> tuple[list[list[str]], list[list[float]]]:
        """``k`` reflections (and their S_u) for each of ``n_users`` users; fewer when the pool holds
        fewer than ``k`` (cold start: none at all while it is empty)."""
        if n_users < 0 or k < 0:
            raise ConfigError(f"n_users and k must be >= 0, got {n_users}, {k}")
        take = min(k, len(self.texts))
        if take == 0:
            return [[] for _ in range(n_users)], [[] for _ in range(n_users)]
        returns = np.asarray(self.returns)
        p = softmax_weights(returns, self.settings.alpha)
        texts: list[list[str]] = []
        rets: list[list[float]] = []
        for _ in range(n_users):
            idx = (
                self.rng.choice(len(p), size=take, replace=False, p=p)
                if take > 1
                else [int(self.rng.choice(len(p), p=p))]
            )
            texts.append([self.texts[i] for i in idx])
            rets.append([float(returns[i]) for i in idx])
            self.n_sampled += take
            self.sampled_return_sum += float(returns[list(idx)].sum())
        return texts, rets

    def stats(self) -> dict[str, float]:
        """Pool size and the mean S_u of the reflections handed out so far (the algorithm logs both)."""
        return {
            "pool_size": len(self.texts),
            "added": self.n_added,
            "evicted": self.n_evicted,
            "sampled": self.n_sampled,
            "mean_sampled_return": self.sampled_return_sum / self.n_sampled if self.n_sampled else 0.0,
            "mean_pool_return": float(np.mean(self.returns)) if self.returns else 0.0,
        }


def _actor_class() -> Any:
    import ray

    @ray.remote(num_cpus=0, max_restarts=-1)
    class ReflectionPool(ReflectionPoolState):
        """The pool as a named actor, one per cluster and name; all EnvRunners share it."""

        def settings_dict(self) -> dict[str, Any]:
            from dataclasses import asdict

            return asdict(self.settings)

    return ReflectionPool


_ACTOR_CLASS: Any = None


def get_pool(
    name: str = DEFAULT_POOL_NAME, settings: PoolSettings | None = None, detached: bool = False
) -> Any:
    """The named pool actor, created on first use (``get_if_exists``), so the driver and every EnvRunner
    reach the same one. ``detached`` lets it outlive the driver (e.g. to keep lessons between runs)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = _actor_class()
    options: dict[str, Any] = {"name": name, "namespace": POOL_NAMESPACE, "get_if_exists": True}
    if detached:
        options["lifetime"] = "detached"
    return _ACTOR_CLASS.options(**options).remote(settings or PoolSettings())


def lookup_pool(name: str = DEFAULT_POOL_NAME) -> Any:
    """An existing pool actor by name (EnvRunners use this: the driver created it)."""
    import ray

    return ray.get_actor(name, namespace=POOL_NAMESPACE)
