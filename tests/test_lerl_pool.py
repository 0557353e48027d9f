"""LERL's reflection pool: the softmax sampling rule, capacity and eviction, one shared named actor."""

from __future__ import annotations

import numpy as np
import pytest

from rayrec.algorithms.lerl.reflection_pool import (
    PoolSettings,
    ReflectionPoolState,
    get_pool,
    softmax_weights,
)
from rayrec.errors import ConfigError


def _pool(returns: list[float], **settings: object) -> ReflectionPoolState:
    pool = ReflectionPoolState(PoolSettings(**settings))
    pool.add([(f"lesson {i}", {"i": i}, r) for i, r in enumerate(returns)])
    return pool


def test_sampling_follows_the_softmax_of_returns() -> None:
    """20,000 single draws against P(u) ∝ exp(α S_u): a chi-square test at the 0.1% level, seeded."""
    from scipy.stats import chisquare

    returns = [0.0, 1.0, 2.0, 3.0, 5.0]
    alpha = 0.7
    pool = _pool(returns, alpha=alpha, seed=123)
    texts, rets = pool.sample(20_000, 1)
    counts = np.bincount([int(t[0].split()[1]) for t in texts], minlength=len(returns))
    expected = softmax_weights(np.array(returns), alpha) * counts.sum()
    np.testing.assert_allclose(
        expected / expected.sum(), np.exp(alpha * np.array(returns)) / np.exp(alpha * np.array(returns)).sum()
    )
    assert chisquare(counts, expected).pvalue > 1e-3, (counts, expected)
    # the pool reports the mean S_u it handed out, which the softmax pushes above the pool's mean
    stats = pool.stats()
    assert stats["sampled"] == 20_000
    assert stats["mean_sampled_return"] == pytest.approx(np.mean([r[0] for r in rets]))
    assert stats["mean_sampled_return"] > stats["mean_pool_return"]


def test_alpha_zero_is_uniform_and_a_large_alpha_reads_only_the_best() -> None:
    from scipy.stats import chisquare

    texts, _ = _pool([0.0, 4.0, 9.0], alpha=0.0, seed=1).sample(6000, 1)
    counts = np.bincount([int(t[0].split()[1]) for t in texts], minlength=3)
    assert chisquare(counts).pvalue > 1e-3, counts
    texts, _ = _pool([0.0, 4.0, 9.0], alpha=50.0, seed=1).sample(500, 1)
    assert {t[0] for t in texts} == {"lesson 2"}


def test_draws_per_user_are_distinct_and_cold_start_gives_none() -> None:
    pool = _pool([1.0, 2.0, 3.0, 4.0], seed=0)
    texts, _ = pool.sample(200, 3)
    assert all(len(set(t)) == 3 for t in texts)
    texts, _ = _pool([1.0, 2.0], seed=0).sample(5, 3)  # fewer entries than N_s: all of them
    assert all(sorted(t) == ["lesson 0", "lesson 1"] for t in texts)
    empty = ReflectionPoolState(PoolSettings())
    assert empty.sample(4, 2) == ([[]] * 4, [[]] * 4)
    assert empty.stats()["mean_sampled_return"] == 0.0


def test_same_seed_same_draws() -> None:
    a = _pool([0.0, 1.0, 2.0], seed=7).sample(50, 2)
    b = _pool([0.0, 1.0, 2.0], seed=7).sample(50, 2)
    assert a == b


def test_capacity_with_fifo_and_lowest_return_eviction() -> None:
    fifo = _pool([5.0, 1.0, 3.0, 2.0], capacity=3, eviction="fifo")
    assert fifo.texts == ["lesson 1", "lesson 2", "lesson 3"]
    low = _pool([5.0, 1.0, 3.0, 2.0], capacity=3, eviction="lowest_return")
    assert low.texts == ["lesson 0", "lesson 2", "lesson 3"] and low.returns == [5.0, 3.0, 2.0]
    assert low.stats()["pool_size"] == 3 and low.stats()["evicted"] == 1


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="capacity"):
        PoolSettings(capacity=0)
    with pytest.raises(ConfigError, match="eviction"):
        PoolSettings(eviction="random")
    with pytest.raises(ConfigError, match="alpha"):
        PoolSettings(alpha=float("inf"))


def test_one_named_actor_is_shared(ray_session) -> None:
    import ray

    name = "test-lerl-pool-shared"
    first = get_pool(name, PoolSettings(seed=0))
    second = get_pool(name, PoolSettings(capacity=5))  # get_if_exists: the first one's settings stay
    ray.get(first.add.remote([("a", {}, 1.0), ("b", {}, 2.0)]))
    assert ray.get(second.stats.remote())["pool_size"] == 2
    assert ray.get(second.settings_dict.remote())["capacity"] == 1000
    ray.kill(first)
