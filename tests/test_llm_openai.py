"""The openai backend against a real OpenAI-compatible server: the planner app's own HTTP route, serving
the real SmolLM2 on CPU. Its scores must agree with the model scored directly in the replica."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from ray import serve

from rayrec import assets
from rayrec.llm import make_backend, to_distribution
from rayrec.llm.openai_backend import LLMServerError, OpenAIBackend
from rayrec.serve.planner import PlannerConfig, deploy

APP = "test-openai-route"
PROMPTS = [
    "I liked Toy Story and Aladdin. Which genre next? Answer with one genre.",
    "I watched Scream, Halloween and The Shining. Which genre next? Answer with one genre.",
]
CHOICES = [["Animation", "Horror", "Documentary"], ["Horror", "Musical", "Children's", "War"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(ray_session):
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    handle = deploy(PlannerConfig(app_name=APP, ray_actor_options={"num_cpus": 0.5}))
    yield handle, f"http://127.0.0.1:{port}/v1"
    serve.shutdown()


def test_openai_backend_scores_through_the_route_like_direct_scoring(served):
    handle, base_url = served
    backend = make_backend("openai", base_url=base_url, tokenizer=str(assets.smollm2_gguf()), timeout_s=60)
    assert backend.chat_text("hi") == OpenAIBackend(base_url=base_url).chat_text("hi"), (
        "the built-in SmolLM2 chat format must match the model's own template"
    )
    # Scored answers end with the same end-of-turn token whether read off the template or the format.
    assert backend.end_of_turn == OpenAIBackend(base_url=base_url).end_of_turn == "<|im_end|>"
    via_http = backend.score_choices(PROMPTS, CHOICES)
    direct = [handle.score.remote(p, c).result(timeout_s=60) for p, c in zip(PROMPTS, CHOICES)]
    for h, d in zip(via_http, direct):
        assert np.all(h < 0)
        np.testing.assert_allclose(h, d, atol=1e-3)
        np.testing.assert_allclose(to_distribution(h), to_distribution(d), atol=1e-4)
    assert backend.stats["choice_tokens"] >= sum(len(c) for c in CHOICES)


def test_generation_and_plain_completion_through_the_route(served):
    _, base_url = served
    backend = OpenAIBackend(base_url=base_url, timeout_s=60)
    (text,) = backend.generate(["Name one movie genre."], max_tokens=8)
    assert text
    reply = backend._post(
        "/completions", {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}
    )
    assert reply["choices"][0]["text"] and reply["object"] == "text_completion"
    usage = reply["usage"]
    assert usage["prompt_tokens"] == 5 and 1 <= usage["completion_tokens"] <= 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_bad_requests_are_refused_not_retried(served):
    _, base_url = served
    backend = OpenAIBackend(base_url=base_url, timeout_s=30, max_retries=3)
    with pytest.raises(LLMServerError, match="HTTP 400"):
        backend._post("/completions", {"prompt": "x", "max_tokens": 0})
    assert backend.stats["retries"] == 0


def test_unreachable_server_is_retried_with_backoff_then_raises():
    backend = OpenAIBackend(base_url=f"http://127.0.0.1:{_free_port()}/v1", max_retries=2, backoff_s=0.01)
    with pytest.raises(LLMServerError, match="after 3 tries"):
        backend.score_choices(["p"], [["a", "b"]])
    assert backend.stats["retries"] == 2 and backend.stats["requests"] == 3
