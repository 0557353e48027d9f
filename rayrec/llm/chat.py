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


_SENTINEL = "\x00rayrec-answer\x00"


def end_of_turn(tokenizer: Any | None) -> str:
    """The text of the token that closes an assistant answer (SmolLM2's ``<|im_end|>``), from the template.

    Scoring a choice *followed by* this token asks "is this the whole answer?", not "does the answer start
    like this?": without it a title that is a token prefix of another ("Alien" / "Alien 3") could never
    score below the longer one. The token is read off the chat template (the text right after a rendered
    assistant message), so any model's own end-of-turn marker is used; templates that close a turn with
    nothing fall back to the tokenizer's EOS token, and no tokenizer means no end token (``""``).
    """
    if tokenizer is None:
        return ""
    if getattr(tokenizer, "chat_template", None) is not None:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": _SENTINEL}], tokenize=False
        )
        after = rendered.split(_SENTINEL, 1)[1] if _SENTINEL in rendered else ""
        ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after.strip() else []
        if ids:
            return tokenizer.decode(ids[:1])
    return getattr(tokenizer, "eos_token", None) or ""


def end_of_turn_from_format(chat_format: str) -> str:
    """The end-of-turn marker of a ``{prompt}`` format string: what closes the user turn, e.g. ChatML's
    ``<|im_end|>`` in ``"<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n"``; the same
    marker closes the assistant's turn in every ChatML-style template."""
    after = chat_format.split("{prompt}", 1)[1] if "{prompt}" in chat_format else ""
    return after.split("\n", 1)[0].strip()
