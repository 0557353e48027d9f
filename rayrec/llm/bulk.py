"""Distributions for many choice prompts at once, for offline users such as LAAC's π_LLM table.

LAAC scores thousands of states once and caches the result; batching prompts lets the backend share
one prefix pass per batch, and mapping each distribution back to catalog ids here keeps callers from
ever handling choice strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rayrec.errors import ConfigError
from rayrec.llm.backend import LLMBackend
from rayrec.llm.choice_scoring import to_distribution
from rayrec.llm.prompts import ChoicePrompt


def choice_distributions(
    backend: LLMBackend,
    prompts: Sequence[ChoicePrompt],
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(catalog ids, probabilities)`` per prompt, scored ``batch_size`` prompts per backend call.

    ``on_batch(n_done)`` is called after each batch (e.g. to advance a rich progress bar).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, not {batch_size}")
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        scores = backend.score_choices([p.text for p in batch], [list(p.choices) for p in batch])
        out.extend(p.to_ids(to_distribution(s)) for p, s in zip(batch, scores))
        if on_batch is not None:
            on_batch(len(out))
    return out
