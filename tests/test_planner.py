"""The planner deployment with the real SmolLM2 on CPU: remote callers, batching, cache, and surviving
the loss of its replica. One app for the module (loading the model costs seconds); the replica-kill
test runs late because it replaces the replica, and the CLI's `down` last because it deletes the app
(and the fallback ledger)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import ray
from ray import serve

from rayrec.errors import ConfigError
from rayrec.serve.planner import PlannerConfig, deploy
from rayrec.serve.planner_client import PlannerClient, fallback_counts, fallback_distribution, get_handle

APP = "test-planner"
GENRES = ["Drama", "Comedy", "Horror", "Sci-Fi"]


def _prompt(i: int) -> str:
    return (
        f"User {i} watched Alien, Aliens and The Thing. Which genre should come next? Answer with one genre."
    )


@pytest.fixture(scope="module")
def planner(ray_session):
    serve.start(proxy_location="Disabled")
    handle = deploy(
        PlannerConfig(
            app_name=APP,
            ray_actor_options={"num_cpus": 0.5},
            max_batch_size=16,
            batch_wait_timeout_s=0.05,
            max_ongoing_requests=64,
        )
    )
    yield handle
    serve.shutdown()


@ray.remote(num_cpus=0)
class EnvRunnerLike:
    """Calls the planner from synchronous code in another process, as an RLlib EnvRunner's env does."""

    def __init__(self, app_name: str) -> None:
        self.client = PlannerClient(app_name, timeout_s=60)

    def plan(self, prompt: str, choices: list[str]) -> np.ndarray:
        return self.client.distribution(prompt, choices)


def test_config_rejects_batches_that_cannot_fill():
    with pytest.raises(ConfigError, match="max_ongoing_requests"):
        PlannerConfig(max_batch_size=32, max_ongoing_requests=8)
    with pytest.raises(ConfigError, match="exactly one"):
        PlannerConfig(num_replicas=2, autoscaling_config={"min_replicas": 1, "max_replicas": 2})


def test_fallback_distribution_is_prior_or_uniform():
    np.testing.assert_allclose(fallback_distribution(4), [0.25] * 4)
    np.testing.assert_allclose(fallback_distribution(3, [2, 1, 1]), [0.5, 0.25, 0.25])


def test_remote_actor_gets_a_distribution(planner):
    actor = EnvRunnerLike.remote(APP)
    dist = ray.get(actor.plan.remote(_prompt(0), GENRES), timeout=120)
    assert dist.shape == (len(GENRES),)
    assert np.all(dist > 0) and dist.sum() == pytest.approx(1.0)
    direct = planner.score.remote(_prompt(0), GENRES).result(timeout_s=60)
    np.testing.assert_allclose(dist, np.exp(direct) / np.exp(direct).sum(), rtol=1e-6)
    assert not np.allclose(dist, 1 / len(GENRES)), "a real model answer, not the uniform fallback"
    ray.kill(actor)


def test_concurrent_calls_form_batches_and_repeats_hit_the_cache(planner):
    client = PlannerClient(APP, timeout_s=120)
    prompts = [_prompt(100 + i) for i in range(16)]
    before = planner.stats.remote().result(timeout_s=30)
    first = client.score_choices(prompts, [GENRES] * len(prompts))
    mid = planner.stats.remote().result(timeout_s=30)
    again = client.score_choices(prompts, [GENRES] * len(prompts))
    after = planner.stats.remote().result(timeout_s=30)

    new_batches = {k: v - before["batch_size_hist"].get(k, 0) for k, v in mid["batch_size_hist"].items()}
    assert max(k for k, v in new_batches.items() if v > 0) > 1, f"no batch > 1 formed: {new_batches}"
    assert after["cache_hits"] - mid["cache_hits"] == len(prompts)
    assert after["backend"]["forward_passes"] == mid["backend"]["forward_passes"], "repeats reached the model"
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert client.stats["fallbacks"] == 0


def test_generate_through_the_planner(planner):
    client = PlannerClient(APP, timeout_s=120)
    (text,) = client.generate(["Write one short lesson about recommending movies."], max_tokens=12)
    assert isinstance(text, str) and text.strip()


def test_killed_replica_gives_fallbacks_then_recovers(planner):
    client = PlannerClient(APP, timeout_s=2.0)
    prior = np.array([4.0, 2.0, 1.0, 1.0])
    assert not np.allclose(client.distribution(_prompt(1), GENRES, prior), prior / prior.sum())

    (replica,) = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::{APP}#")
    ]
    ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)

    # Fresh prompts (no cache) while the replica is gone: the caller keeps going on its prior.
    got = [client.distribution(_prompt(200 + i), GENRES, prior) for i in range(3)]
    for dist in got:
        np.testing.assert_allclose(dist, prior / prior.sum())
    assert client.stats["fallbacks"] == 3
    deadline = time.monotonic() + 60
    while sum(fallback_counts(APP).values()) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)  # the ledger's record() calls are fire-and-forget
    assert sum(fallback_counts(APP).values()) >= 3

    # Serve replaces the replica; the same cached handle answers again once the model is loaded.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dist = client.distribution(_prompt(300), GENRES, prior)
        if not np.allclose(dist, prior / prior.sum()):
            break
        time.sleep(1.0)
    else:
        pytest.fail("the planner did not recover within 120 s of losing its replica")
    assert get_handle(APP) is get_handle(APP)
    assert dist.sum() == pytest.approx(1.0)


def test_cli_status_then_down(planner):
    from typer.testing import CliRunner

    from rayrec.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["planner", "status", "--name", APP])
    assert shown.exit_code == 0, shown.output
    for metric in ("batch size mean", "cache hit rate", "latency p95", "fallbacks (cluster)"):
        assert metric in shown.output
    gone = runner.invoke(app, ["planner", "down", "--name", APP])
    assert gone.exit_code == 0, gone.output
    assert APP not in serve.status().applications
