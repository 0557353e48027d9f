"""The vLLM backend on a real GPU, checked against the transformers backend on the same weights.

Marked ``gpu``: skipped where there is no CUDA device. On a GPU box with vLLM installed they run for
real: the embedded SmolLM2 GGUF is dequantised once with transformers and saved as a plain HF
directory, which vLLM loads (no hub access needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rayrec.llm import make_backend, to_distribution
from rayrec.llm.prompts import planner_prompt

pytestmark = pytest.mark.gpu

PROMPTS = ["I watched Star Wars and Alien and loved both. Which genre should I watch next?", "Pick a colour."]
CHOICES = [["Action", "Children's", "Documentary", "Romance", "Sci-Fi"], ["red", "blue", "green"]]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("vllm", reason="the vllm extra is not installed on this GPU box")
    reference = make_backend("transformers", device="cpu")
    model_dir = Path(tmp_path_factory.mktemp("smollm2-hf"))
    reference.model.save_pretrained(model_dir)
    reference.tokenizer.save_pretrained(model_dir)
    engine = make_backend(
        "vllm", model=str(model_dir), dtype="float32", gpu_memory_utilization=0.3, max_model_len=2048
    )
    return reference, engine


def test_vllm_scores_match_transformers(backends) -> None:
    reference, engine = backends
    want = reference.score_choices(PROMPTS, CHOICES)
    got = engine.score_choices(PROMPTS, CHOICES)
    for g, w in zip(got, want):
        assert g.shape == w.shape and np.all(np.isfinite(g))
        np.testing.assert_allclose(g, w, atol=2e-2, rtol=0)  # fp32 on both, different kernels
        assert abs(to_distribution(g).sum() - 1) < 1e-12


def test_vllm_is_invariant_to_choice_order_and_reuses_the_prefix(backends) -> None:
    _, engine = backends
    p = planner_prompt([], [], CHOICES[0])
    before = engine.stats["prefix_tokens_reused"]
    a = to_distribution(engine.score_choices([p.text], [list(p.choices)])[0])
    b = to_distribution(engine.score_choices([p.text], [list(reversed(p.choices))])[0])
    np.testing.assert_allclose(b, a[::-1], atol=1e-4, rtol=0)
    assert engine.stats["prefix_tokens_reused"] > before  # prefix caching shared the prompt's KV blocks


def test_vllm_generates_text(backends) -> None:
    _, engine = backends
    texts = engine.generate(["Name one movie genre.", "Say hello."], max_tokens=8)
    assert len(texts) == 2 and all(texts)
    assert engine.generate(["Name one movie genre."], max_tokens=8) == texts[:1]
