"""Turning per-choice log-likelihoods into a distribution over the allowed answers.

Scoring the allowed answers (instead of parsing free text) is what keeps a small model useful and
the answer inside the catalog: the model can only redistribute mass over the choices it is given.

A choice is scored as a *whole* answer: its tokens followed by the chat template's end-of-turn token.
Scored as the mere start of an answer, a title whose tokens are a prefix of another's ("Alien" /
"Alien 3") would always score at least as high as the longer one, whatever the user likes.

Length normalisation is a named choice, not a hidden one. The default is the **sum** of the choice's
token log-probs, i.e. the model's true likelihood of the whole answer, which is what the spec asks
for. It penalises long answers (``"Children's"`` costs more tokens than ``"War"``), so
``length_normalise=True`` offers the **mean** per token instead, which treats a category name as
one unit whatever its tokenisation. Both are exact functions of the same scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rayrec.errors import ConfigError


def to_distribution(
    logprobs: np.ndarray, length_normalise: bool = False, n_tokens: np.ndarray | None = None
) -> np.ndarray:
    """Softmax over the choices of one prompt (float64, sums to 1).

    With ``length_normalise`` each log-prob is divided by its choice's token count first, so
    ``n_tokens`` (from the backend's tokenizer) must be given.
    """
    scores = np.asarray(logprobs, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ConfigError(f"expected a non-empty 1-d array of log-probs, got shape {scores.shape}")
    # -inf is a probability of 0 (e.g. a fallback prior with zero weights); NaN and +inf are bugs.
    if np.any(np.isnan(scores)) or np.any(scores == np.inf) or not np.any(np.isfinite(scores)):
        raise ConfigError(
            "log-probs contain NaN or +inf, or no finite value; check the backend's output for this prompt"
        )
    if length_normalise:
        if n_tokens is None:
            raise ConfigError("length_normalise=True needs n_tokens (token count of each choice)")
        counts = np.asarray(n_tokens, dtype=np.float64)
        if counts.shape != scores.shape or np.any(counts < 1):
            raise ConfigError("n_tokens must hold one count ≥ 1 per choice")
        scores = scores / counts
    z = scores - scores.max()
    p = np.exp(z)
    return p / p.sum()


def choices_to_ids(
    distribution: np.ndarray, choices: Sequence[str], choice_ids: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Map a distribution over choice strings back to catalog ids (category or item ids).

    Returns ``(ids, probs)`` in the order of ``choices``; a choice that is not in ``choice_ids``
    is a caller bug (the prompt offered something outside the catalog) and raises.
    """
    if len(distribution) != len(choices):
        raise ConfigError(f"{len(distribution)} probabilities for {len(choices)} choices")
    missing = [c for c in choices if c not in choice_ids]
    if missing:
        raise ConfigError(f"choices not in the catalog: {missing[:5]}; build choices from the catalog")
    ids = np.array([choice_ids[c] for c in choices], dtype=np.int64)
    return ids, np.asarray(distribution, dtype=np.float64)


@dataclass(frozen=True)
class ChoiceTokens:
    """One prompt's tokens and, per choice, its full prompt+choice tokens and where the choice starts.

    ``prefix_len`` is the part shared by the prompt and every prompt+choice tokenisation (normally the
    whole prompt; shorter only if a choice merges with the prompt's last token). A choice's scored
    tokens are those from ``starts[c]`` on: the tokens that differ from the prompt alone, then the
    end-of-turn token(s) that close the answer.
    """

    prompt_ids: list[int]
    full_ids: list[list[int]]
    starts: list[int]
    prefix_len: int

    def n_tokens(self) -> np.ndarray:
        """Scored tokens per choice, the end-of-turn token included (for mean-per-token normalisation)."""
        return np.array([len(f) - s for f, s in zip(self.full_ids, self.starts)], dtype=np.int64)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def tokenise_choices(
    encode: Callable[[str], list[int]], text: str, choices: Sequence[str], end_ids: Sequence[int] = ()
) -> ChoiceTokens:
    """Tokenise ``text`` and ``text + choice`` so a choice's tokens are exactly those after the prompt,
    followed by ``end_ids`` (the chat template's end-of-turn token, see ``chat.end_of_turn``).

    Tokenising the choice alone would be wrong where a tokenizer merges across the boundary; comparing
    the two tokenisations finds the boundary whatever the tokenizer does. The end token is appended as
    ids, after the choice's own tokens, exactly where the model would emit it to close its answer; it is
    what keeps a choice from being scored as the mere start of a longer one.
    """
    if len(choices) == 0:
        raise ConfigError("score_choices needs at least one choice per prompt")
    prompt_ids = encode(text)
    full_ids, starts = [], []
    for choice in choices:
        ids = encode(text + choice)
        start = _common_prefix(prompt_ids, ids)
        if start == len(ids):
            raise ConfigError(f"choice {choice!r} adds no tokens to the prompt; use a non-empty answer")
        full_ids.append([*ids, *end_ids])
        starts.append(start)
    # At least one prompt token must stay in the prefix: its logits score the first choice token.
    return ChoiceTokens(prompt_ids, full_ids, starts, prefix_len=max(1, min(starts)))
