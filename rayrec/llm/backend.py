"""The one interface every LLM backend answers, so planners, LAAC's π_LLM and the Serve deployment
never care whether the model runs in-process (transformers), on a GPU engine (vLLM) or behind HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rayrec.llm.choice_scoring import to_distribution

__all__ = ["LLMBackend", "to_distribution"]


@runtime_checkable
class LLMBackend(Protocol):
    """An LLM reached through two calls.

    ``score_choices`` returns, per prompt, one float64 array with log P(choice | prompt) = the sum of
    the choice's token log-probs. The prompt is the *user message*: the backend applies the chat
    template, and the choice is the start of the assistant's answer. Scoring (not free generation)
    is how answers stay inside the catalog.

    ``generate`` returns free text (reflections, lessons); ``seed`` makes sampling repeatable.

    ``stats`` holds monotone counters (prompt_tokens, choice_tokens, prefix_tokens_reused,
    forward_passes, generated_tokens, ...) that the Serve deployment exports as metrics.
    """

    model_id: str
    stats: dict[str, int]

    def score_choices(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[np.ndarray]: ...

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]: ...
