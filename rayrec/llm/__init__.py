"""LLM layer: backends that score allowed answers and generate text, and the prompts they read.

Backends are built by name so configs and the CLI can pick one with a string; the heavy ones
(vLLM, the HTTP client) are imported only when asked for.
"""

from __future__ import annotations

from typing import Any

from rayrec.errors import ConfigError
from rayrec.llm.backend import LLMBackend
from rayrec.llm.choice_scoring import choices_to_ids, to_distribution

__all__ = ["BACKENDS", "LLMBackend", "choices_to_ids", "make_backend", "to_distribution"]

BACKENDS = ("transformers", "vllm", "openai")


def make_backend(kind: str = "transformers", **kwargs: Any) -> LLMBackend:
    """A backend by name; ``kwargs`` go to its constructor (e.g. ``model=``, ``device=``, ``base_url=``)."""
    if kind == "transformers":
        from rayrec.llm.transformers_backend import TransformersBackend

        return TransformersBackend(**kwargs)
    if kind == "vllm":
        from rayrec.llm.vllm_backend import VLLMBackend

        return VLLMBackend(**kwargs)
    if kind == "openai":
        from rayrec.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(**kwargs)
    raise ConfigError(f"unknown LLM backend {kind!r}; choose one of {', '.join(BACKENDS)}")
