"""LERL's high-level planners: which categories each due user may see for the next ``replan_every`` steps.

Every planner scores the candidate categories of a batch of users, (R, C) float, and
:func:`select_categories` turns the scores into each user's allowed set (top-m, or m drawn without
replacement in proportion to the scores). Kinds (``PLANNERS``):

- ``llm``: the planner deployment (one batched ``score_choices`` call through ``PlannerClient`` for all
  due users of an EnvRunner) gives a distribution over categories; a late or missing planner gives the
  counted fallback, the catalog's category popularity, so a plan always exists.
- ``random``: m categories uniformly at random (what the LLM adds over chance).
- ``round_robin``: a fixed rule: categories in popularity order, m at a time, the next m at each replan
  (what the LLM adds over a fixed diversity rule).
- ``none``: no planner; every category stays allowed (flat PPO with LERL's module).

The LLM prompt is built for prefix caching (issue 9, item 2): everything shared by every request (the
instruction and the lettered candidate list) comes first, the per-user part (a compact category
history and N_s sampled lessons) last. Each category is answered by its letter, a one-token answer, so
scoring the C choices costs one fed token each on top of the prompt's KV cache. Category names and
lessons are catalog-derived text and are quoted as data (``rayrec.llm.prompts.quote``); letters and
numbers are ours.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from rayrec.errors import ConfigError
from rayrec.llm.prompts import DATA_NOTE, quote

PLANNERS = ("llm", "random", "round_robin", "none")
PLAN_SELECT = ("top", "sample")
LETTERS = string.ascii_uppercase + string.ascii_lowercase  # up to 52 one-token labels


def category_labels(n: int) -> list[str]:
    """One short label per candidate category: A..Z then a..z, numbers beyond that."""
    return [LETTERS[i] if i < len(LETTERS) else str(i) for i in range(n)]


class PlannerPrompts:
    """Builds the planner's prompts: one shared prefix for all users, a short per-user suffix.

    The prefix says once how to read the suffix (``I3 .6`` = category I shown 3 times, mean reward
    0.6), so each user costs only their own numbers: ~15 tokens of history plus ~20 per lesson with
    the compact lessons of :func:`compact_reflection` (SmolLM2's tokenizer).
    """

    def __init__(self, category_names: Sequence[str], candidates: np.ndarray, history_top: int = 6) -> None:
        self.candidates = np.asarray(candidates, dtype=np.int64)  # catalog category ids, (C',)
        self.labels = category_labels(len(self.candidates))
        self.label_of = {int(c): lab for c, lab in zip(self.candidates, self.labels)}
        self.history_top = history_top
        listing = "\n".join(
            f"{lab}: {quote(str(category_names[int(c)]))}" for lab, c in zip(self.labels, self.candidates)
        )
        self.prefix = (
            "You plan a recommendation session. A user leaves when shown the same category too often, so "
            "prefer categories with a high mean reward that were shown few times.\n"
            f"{DATA_NOTE}\n<data>\n{listing}\n</data>\n"
            "Below, 'Seen: I3 .6' means category I was shown 3 times this session with mean reward 0.6; "
            "lessons summarise past sessions (L = length, R = total reward, best/most = the category "
            "rewarded best/shown most). Answer with the letter of one category and nothing else.\n"
        )

    def history_text(self, shown: np.ndarray, mean: np.ndarray) -> str:
        """The most shown categories as ``letter+times reward`` (``I3 .6, F2 .4``); "-" when none."""
        seen = np.flatnonzero(shown > 0)
        seen = seen[np.argsort(-shown[seen], kind="stable")][: self.history_top]
        rows = [f"{self.labels[int(c)]}{int(shown[c])} {_short(mean[c])}" for c in seen]
        return ", ".join(rows) if rows else "-"

    def user_part(self, shown: np.ndarray, mean: np.ndarray, lessons: Sequence[str]) -> str:
        """The per-user suffix (``shown``/``mean`` over the candidates); lessons are quoted as data."""
        text = "Seen: " + self.history_text(shown, mean)
        if lessons:
            text += "\nLessons: " + " ".join(quote(s) for s in lessons)
        return text

    def prompt(self, shown: np.ndarray, mean: np.ndarray, lessons: Sequence[str]) -> str:
        return self.prefix + self.user_part(shown, mean, lessons)


def _short(x: float) -> str:
    """0.62 -> ".6", 1.0 -> "1": one decimal, no leading zero (fewer tokens, and more cache hits)."""
    text = f"{float(x):.1f}"
    return text[1:] if text.startswith("0.") else text.removesuffix(".0")


def compact_reflection(
    prompts: PlannerPrompts, steps: int, total: float, shown: np.ndarray, mean: np.ndarray
) -> str:
    """A finished session as a ~20-token lesson in the prompt's own notation (``shown``/``mean`` over
    the candidates): ``L12 R7.3 best I .8 most F5``. The template reflection LERL uses when generation
    is off; the planner's prefix explains the notation once."""
    seen = np.flatnonzero(shown > 0)
    if not len(seen):
        return f"L{steps} R{total:.1f}"
    best = seen[np.argmax(mean[seen])]
    most = seen[np.argmax(shown[seen])]
    return (
        f"L{steps} R{total:.1f} best {prompts.labels[int(best)]} {_short(mean[best])} "
        f"most {prompts.labels[int(most)]}{int(shown[most])}"
    )


def select_categories(
    scores: np.ndarray, m: int, how: str = "top", rng: np.random.Generator | None = None
) -> np.ndarray:
    """(R, C') scores -> (R, C') bool masks with m allowed categories per row (top-m or sampled).

    ``sample`` draws m categories without replacement with probabilities proportional to the scores
    (which must then be non-negative; a row of zeros draws uniformly).
    """
    scores = np.asarray(scores, dtype=np.float64)
    r, c = scores.shape
    m = min(m, c)
    out = np.zeros((r, c), dtype=bool)
    if how == "top":
        top = np.argsort(-scores, axis=1, kind="stable")[:, :m]
        np.put_along_axis(out, top, True, axis=1)
        return out
    if how != "sample":
        raise ConfigError(f"plan selection must be one of {PLAN_SELECT}, not {how!r}")
    rng = rng or np.random.default_rng()
    # Gumbel top-m on log-probabilities = successive sampling without replacement.
    logp = np.log(np.clip(scores, 0.0, None) + 1e-12)
    keys = logp + rng.gumbel(size=scores.shape)
    top = np.argsort(-keys, axis=1)[:, :m]
    np.put_along_axis(out, top, True, axis=1)
    return out


class CategoryPlanner:
    """Scores candidate categories for due users; the env turns scores into masks."""

    kind = ""

    def __init__(self, candidates: np.ndarray, popularity: np.ndarray, m: int) -> None:
        self.candidates = np.asarray(candidates, dtype=np.int64)
        self.popularity = np.asarray(popularity, dtype=np.float64)  # over the candidates, sums to 1
        self.m = m

    def scores(
        self,
        rows: np.ndarray,
        plan_index: np.ndarray,
        shown: np.ndarray,
        mean: np.ndarray,
        lessons: list[list[str]],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """(R, C') scores for the rows due; ``plan_index`` counts each row's plans this session."""
        raise NotImplementedError

    def stats(self) -> dict[str, float]:
        return {}


class RandomPlanner(CategoryPlanner):
    kind = "random"

    def scores(self, rows, plan_index, shown, mean, lessons, rng):  # noqa: ANN001, ANN201
        return rng.random((len(rows), len(self.candidates)))


class RoundRobinPlanner(CategoryPlanner):
    """Categories in popularity order, m per plan, the next m at the next plan (wrapping around)."""

    kind = "round_robin"

    def __init__(self, candidates: np.ndarray, popularity: np.ndarray, m: int) -> None:
        super().__init__(candidates, popularity, m)
        self.order = np.argsort(-self.popularity, kind="stable")  # positions into candidates

    def scores(self, rows, plan_index, shown, mean, lessons, rng):  # noqa: ANN001, ANN201
        c = len(self.candidates)
        out = np.zeros((len(rows), c))
        for j in range(min(self.m, c)):
            pos = (np.asarray(plan_index) * self.m + j) % c
            out[np.arange(len(rows)), self.order[pos]] = 1.0 + (self.m - j)
        return out


class LLMPlanner(CategoryPlanner):
    """The planner deployment, one batched call per replan for all due users of this env."""

    kind = "llm"

    def __init__(
        self,
        candidates: np.ndarray,
        popularity: np.ndarray,
        m: int,
        category_names: Sequence[str],
        app_name: str,
        timeout_s: float,
        history_top: int = 6,
    ) -> None:
        super().__init__(candidates, popularity, m)
        from rayrec.llm.planner_client import PlannerClient

        self.prompts = PlannerPrompts(category_names, self.candidates, history_top)
        self.client = PlannerClient(app_name, timeout_s=timeout_s)
        self.n_prompts = 0  # due users planned
        self.n_unique = 0  # distinct prompts sent

    def scores(self, rows, plan_index, shown, mean, lessons, rng):  # noqa: ANN001, ANN201
        cand = self.candidates
        texts = [self.prompts.prompt(shown[i][cand], mean[i][cand], lessons[i]) for i in range(len(rows))]
        unique = list(dict.fromkeys(texts))  # fresh users share one prompt: score it once
        choices = [self.prompts.labels] * len(unique)
        dists = self.client.distributions(unique, choices, [self.popularity] * len(unique))
        by_text = dict(zip(unique, dists))
        self.n_prompts += len(texts)
        self.n_unique += len(unique)
        return np.stack([by_text[t] for t in texts])

    def stats(self) -> dict[str, float]:
        return {
            "planner_prompts": self.n_prompts,
            "planner_requests": self.client.stats["calls"],
            "planner_fallbacks": self.client.stats["fallbacks"],
        }


def make_planner(
    kind: str,
    categories: np.ndarray,
    m: int,
    category_names: Sequence[str] | None = None,
    item_popularity: np.ndarray | None = None,
    **llm: Any,
) -> CategoryPlanner | None:
    """The planner ``kind`` over the catalog's non-empty categories; ``None`` for ``none``."""
    if kind not in PLANNERS:
        raise ConfigError(f"planner must be one of {PLANNERS}, not {kind!r}")
    if kind == "none":
        return None
    cats = np.asarray(categories, dtype=bool)
    candidates = np.flatnonzero(cats.any(axis=0))
    if not 1 <= m <= len(candidates):
        raise ConfigError(
            f"m = {m} categories per plan, but the catalog has {len(candidates)} non-empty categories; "
            f"choose m in [1, {len(candidates)}]"
        )
    weight = np.ones(cats.shape[0]) if item_popularity is None else np.asarray(item_popularity, float) + 1.0
    pop = (weight @ cats)[candidates]
    pop = pop / pop.sum()
    if kind == "random":
        return RandomPlanner(candidates, pop, m)
    if kind == "round_robin":
        return RoundRobinPlanner(candidates, pop, m)
    if category_names is None:
        raise ConfigError(
            "the llm planner needs the category names; build the env_config with make_lerl_env_config"
        )
    return LLMPlanner(candidates, pop, m, category_names, **llm)
