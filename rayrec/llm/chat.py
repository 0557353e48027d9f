"""Chat templating shared by every backend, so the same user prompt is scored in the same context
whether the model runs in transformers, vLLM, or behind an OpenAI-compatible server."""

from __future__ import annotations

from typing import Any


def chat_text(
    tokenizer: Any | None, prompt: str, system_prompt: str | None = None, fallback: str = "{prompt}"
) -> str:
    """The user message wrapped in the tokenizer's chat template, ending where the answer starts.

    Base models (no template) and callers without a tokenizer get ``fallback`` filled with the prompt.
    """
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        return fallback.format(prompt=prompt)
    messages = [{"role": "user", "content": prompt}]
    if system_prompt is not None:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def new_stats(*extra: str) -> dict[str, int]:
    """Zeroed counters every backend keeps (the Serve deployment exports them as metrics)."""
    keys = ("prompt_tokens", "choice_tokens", "prefix_tokens_reused", "forward_passes", "generated_tokens")
    return dict.fromkeys((*keys, *extra), 0)
