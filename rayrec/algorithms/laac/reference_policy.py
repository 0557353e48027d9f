"""LAAC's reference policy π_LLM: K cheap candidates per user, scored by the LLM, cached on disk.

**Retrieval** (``retrieve_candidates``, no LLM, deterministic for a seed). For each row (a user, or a
user and the first logged step of an ``llm_stride`` block) the history is the user's training items
before that step, and the candidates are K distinct items the user never interacted with in *train*
(none of their train items, whatever the step), filled in this order:

1. **co-occurrence** (``share_cooc`` of K): items most often co-consumed with the user's ``recent``
   last items, cosine-normalised (Σ_j C[j, i] / sqrt(pop_i · pop_j), C = item co-counts in train), so
   that "everyone watched it" does not win by popularity alone;
2. **popular in the user's genres** (``share_popular``): the most popular items of the user's
   ``top_genres`` categories (by count over their history);
3. **long tail of those genres** (the rest): items outside the head (``rayrec.popularity.head_mask``,
   ``head_fraction``) carrying one of those genres, sampled uniformly with a generator seeded by
   (seed, user, step), so the LLM has novel items to favour;
4. if a source runs short (small catalogs, users with few genres), the most popular unseen items fill
   the rest, then -1 pads (only when the user has seen almost the whole catalog).

Only training data is read, so nothing about valid/test leaks into π_LLM. Candidates are the cheap part;
the LLM decides the distribution over them.

**Scoring**: each row becomes ``rayrec.llm.prompts.reference_prompt`` (the ``recent`` last titles with
their ratings and years; the candidates, duplicate titles told apart by year) and
``rayrec.llm.bulk.choice_distributions`` turns the allowed answers' likelihoods into a distribution.
The scorer is anything with ``score_choices(prompts, choices)``: an in-process backend
(``rayrec.llm.make_backend``, ``via="local"``) or the planner deployment's ``PlannerClient``
(``via="planner"``; the CLI builds it, since ``algorithms`` sit below ``serve``). A planner call that
falls back (timeout, dead replica) would put a uniform row into the table, so any fallback stops the
computation with an error instead of being cached.

**Cache**: ``<cache>/llm_tables/<key>.npz`` (``rayrec.assets.cache_dir``) with a JSON sidecar, keyed by
dataset, split, a digest of the training interactions, model id, prompt version, K, stride and the
retrieval settings; written through a temporary file and ``os.replace``, so concurrent runs never read
half a file. A loaded table is checked against the key's fingerprint (``llm_table.check_fingerprint``),
so a table computed for another dataset, split or model is refused with a ``ConfigError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rayrec import assets
from rayrec.algorithms.laac.llm_table import LLMTable, check_fingerprint, load_llm_table
from rayrec.data import Dataset
from rayrec.errors import ConfigError, RayrecError
from rayrec.popularity import head_mask

# Bump when reference_prompt's wording or the retrieval changes what a table holds.
PROMPT_VERSION = "reference-v1"
# The in-process backend's id for the embedded model (rayrec.llm.transformers_backend.EMBEDDED_MODEL_ID),
# known without importing transformers, so a cache hit never loads the model; checked after loading.
EMBEDDED_MODEL_ID = "smollm2-135m-instruct-gguf"
VIAS = ("local", "planner")


class ChoiceScorer(Protocol):
    """What π_LLM needs of an LLM: ``LLMBackend`` and ``PlannerClient`` both answer it."""

    def score_choices(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[np.ndarray]: ...


class ReferencePolicyError(RayrecError):
    """π_LLM could not be computed faithfully (e.g. the planner fell back to a uniform answer)."""


@dataclass(frozen=True)
class RetrievalConfig:
    """How the K candidates of a π_LLM row are found (see the module docstring).

    k: candidates per row; recent: history items that seed co-occurrence and appear in the prompt;
    top_genres: the user's most frequent categories; share_cooc / share_popular: shares of K from
    co-occurrence and genre popularity (the rest is the genres' long tail); head_fraction: the head of
    the popularity split; seed: the long-tail sample.

    Defaults (K 10, 5 recent titles) are sized for the embedded SmolLM2 on 2 CPU cores: ml-100k's 943
    prompts are ~288k computed tokens (prompt ~262 + choices ~43 per prompt), ~9 min at the ~530
    tokens/s that in-process scoring reaches on a quiet 2-core machine (README, planner bench); K 20
    with 10 recent titles would be ~473k tokens, ~15 min.
    """

    k: int = 10
    recent: int = 5
    top_genres: int = 3
    share_cooc: float = 0.4
    share_popular: float = 0.3
    head_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "k": (self.k >= 1, "an int >= 1"),
            "recent": (self.recent >= 0, "an int >= 0"),
            "top_genres": (self.top_genres >= 1, "an int >= 1"),
            "share_cooc": (0 <= self.share_cooc <= 1, "in [0, 1]"),
            "share_popular": (0 <= self.share_popular <= 1, "in [0, 1]"),
            "head_fraction": (0 < self.head_fraction < 1, "in (0, 1)"),
        }
        for name, (ok, what) in checks.items():
            if not ok:
                raise ConfigError(
                    f"π_LLM retrieval {name}={getattr(self, name)!r} is out of range: it must be {what}"
                )
        if self.share_cooc + self.share_popular > 1:
            raise ConfigError(
                f"share_cooc + share_popular = {self.share_cooc + self.share_popular:g} exceeds 1; "
                "the rest of K goes to long-tail items"
            )

    def quotas(self) -> tuple[int, int, int]:
        """(co-occurrence, genre-popular, genre-tail) counts summing to k."""
        n_cooc = round(self.share_cooc * self.k)
        n_pop = min(round(self.share_popular * self.k), self.k - n_cooc)
        return n_cooc, n_pop, self.k - n_cooc - n_pop


@dataclass
class Rows:
    """The rows of a π_LLM table before scoring: who, from which step, which candidates."""

    user_ids: np.ndarray  # (R,) int64
    steps: np.ndarray  # (R,) int64, first logged step the row covers
    candidates: np.ndarray  # (R, K) int64, -1 = pad


def _row_keys(train: Dataset, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, step) of every row: one per user with training data, or one per ``stride`` steps."""
    if stride < 0:
        raise ConfigError(f"llm_stride must be >= 0 (0 = once per user), not {stride}")
    counts = np.bincount(train.interactions["user"].to_numpy(), minlength=train.n_users)
    users = np.flatnonzero(counts)
    if stride == 0:
        return users.astype(np.int64), np.zeros(len(users), np.int64)
    per_user = (counts[users] + stride - 1) // stride
    user_ids = np.repeat(users, per_user).astype(np.int64)
    first = np.repeat(np.cumsum(per_user) - per_user, per_user)
    steps = (np.arange(len(user_ids)) - first) * stride
    return user_ids, steps.astype(np.int64)


def retrieve_candidates(
    train: Dataset, config: RetrievalConfig | None = None, stride: int = 0, users: Sequence[int] | None = None
) -> Rows:
    """K distinct candidates per row that the user never met in train (see the module docstring).

    ``users`` limits the rows to some users (for measurements and tests); all users with training data
    by default.
    """
    config = config or RetrievalConfig()
    n_items = train.n_items
    df = train.interactions  # sorted by (user, timestamp)
    all_users = df["user"].to_numpy(np.int64)
    all_items = df["item"].to_numpy(np.int64)
    starts = np.searchsorted(all_users, np.arange(train.n_users + 1))
    user_ids, steps = _row_keys(train, stride)
    if users is not None:
        keep = np.isin(user_ids, np.asarray(users, dtype=np.int64))
        user_ids, steps = user_ids[keep], steps[keep]
    pop = np.bincount(all_items, minlength=n_items).astype(np.float64)
    tail = ~head_mask(pop, config.head_fraction)
    by_pop = np.argsort(-pop, kind="stable")  # most popular first, ties by lower id
    cats = np.asarray(train.categories, dtype=bool)
    n_cooc, n_pop, _ = config.quotas()
    scores = _cooccurrence_scores(train, user_ids, steps, starts, config.recent, stride) if n_cooc else None
    cands = np.full((len(user_ids), config.k), -1, dtype=np.int64)
    for r, (u, t) in enumerate(zip(user_ids.tolist(), steps.tolist())):
        lo, hi = starts[u], starts[u + 1]
        seen = np.zeros(n_items, dtype=bool)
        seen[all_items[lo:hi]] = True
        history = all_items[lo : lo + t] if stride else all_items[lo:hi]
        picked: list[int] = []
        taken = seen.copy()

        def take(order: np.ndarray, n: int, picked: list[int] = picked, taken: np.ndarray = taken) -> None:
            fresh = order[~taken[order]][:n]
            picked.extend(fresh.tolist())
            taken[fresh] = True

        if scores is not None:
            s = scores[r]
            order = np.argsort(-s, kind="stable")
            take(order[s[order] > 0], n_cooc)
        genres = _top_genres(cats[history], config.top_genres) if len(history) else np.zeros(0, np.int64)
        in_genres = cats[:, genres].any(1) if len(genres) else np.zeros(n_items, dtype=bool)
        take(by_pop[in_genres[by_pop]], n_pop)
        want = config.k - len(picked)
        pool = np.flatnonzero(in_genres & tail & ~taken)
        if want and len(pool):
            rng = np.random.default_rng([config.seed, u, t])
            take(rng.permutation(pool), want)
        take(by_pop, config.k - len(picked))  # fill: most popular unseen items
        cands[r, : len(picked)] = picked
    return Rows(user_ids, steps, cands)


def _top_genres(history_cats: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` categories most frequent in the history (ties by lower index), those with a count > 0."""
    counts = history_cats.sum(0)
    order = np.argsort(-counts, kind="stable")[:n]
    return order[counts[order] > 0]


def _cooccurrence_scores(
    train: Dataset, user_ids: np.ndarray, steps: np.ndarray, starts: np.ndarray, recent: int, stride: int
) -> np.ndarray:
    """(R, I) Σ_{j ∈ recent(row)} C[j, i] / sqrt(pop_i pop_j), by batched dense products with the
    user-item matrix (C = XᵀX is never built, so memory stays O(batch × (users + items)))."""
    n_users, n_items = train.n_users, train.n_items
    users = train.interactions["user"].to_numpy(np.int64)
    items = train.interactions["item"].to_numpy(np.int64)
    x = np.zeros((n_users, n_items), dtype=np.float32)
    x[users, items] = 1.0
    pop = x.sum(0)
    inv = np.where(pop > 0, 1.0 / np.sqrt(np.maximum(pop, 1.0)), 0.0).astype(np.float32)
    out = np.zeros((len(user_ids), n_items), dtype=np.float32)
    batch = 256
    for lo in range(0, len(user_ids), batch):
        rows = range(lo, min(lo + batch, len(user_ids)))
        seeds = np.zeros((len(rows), n_items), dtype=np.float32)
        for b, r in enumerate(rows):
            u, t = int(user_ids[r]), int(steps[r])
            end = starts[u] + t if stride else starts[u + 1]
            seeds[b, items[max(starts[u], end - recent) : end]] = 1.0
        out[lo : lo + len(rows)] = ((seeds * inv) @ x.T) @ x * inv
    return out


# ------------------------------------------------------------------------------------------------
# Prompts and scoring
# ------------------------------------------------------------------------------------------------


def build_prompts(train: Dataset, rows: Rows, recent: int = 5, stride: int = 0) -> list:
    """One ``reference_prompt`` per row: the ``recent`` history items before the row's step (the whole
    training sequence when rows are per user) with ratings and years, and the row's candidates."""
    from rayrec.llm.prompts import RatedTitle, reference_prompt

    df = train.interactions
    all_users = df["user"].to_numpy(np.int64)
    items = df["item"].to_numpy(np.int64)
    ratings = df["rating"].to_numpy(np.float64)
    starts = np.searchsorted(all_users, np.arange(train.n_users + 1))
    titles = np.asarray(train.item_titles, dtype=object)
    years = np.asarray(train.item_years, dtype=np.int64)
    prompts = []
    for u, t, cands in zip(rows.user_ids.tolist(), rows.steps.tolist(), rows.candidates):
        end = starts[u] + t if stride else starts[u + 1]
        lo = max(starts[u], end - recent) if recent else end
        history = [
            RatedTitle(str(titles[i]), float(r), int(years[i]))
            for i, r in zip(items[lo:end], ratings[lo:end])
        ]
        c = cands[cands >= 0]
        prompts.append(reference_prompt(history, [str(titles[i]) for i in c], c.tolist(), years[c].tolist()))
    return prompts


def score_rows(
    train: Dataset,
    rows: Rows,
    scorer: ChoiceScorer,
    recent: int = 5,
    stride: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    description: str = "π_LLM",
) -> tuple[np.ndarray, dict[str, float]]:
    """(R, K) π_LLM probabilities aligned with ``rows.candidates`` (0 on pads), and what it cost:
    prompts, seconds, and the backend's token counters where it keeps them."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from rayrec.llm.bulk import choice_distributions

    prompts = build_prompts(train, rows, recent, stride)
    stats_before = dict(getattr(scorer, "stats", {}) or {})
    fallbacks_before = int(stats_before.get("fallbacks", 0))
    probs = np.zeros(rows.candidates.shape, dtype=np.float32)
    start = time.perf_counter()
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("prompts"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(description, total=len(prompts))

        def on_batch(done: int) -> None:
            bar.update(task, completed=done)
            fell_back = int((getattr(scorer, "stats", {}) or {}).get("fallbacks", 0)) - fallbacks_before
            if fell_back > 0:  # a fallback row is uniform, not the LLM's: never let it into the table
                raise ReferencePolicyError(
                    f"the planner fell back on {fell_back} π_LLM prompts (timeout or no replica), so the "
                    "table would hold uniform rows; nothing was cached. Check `rayrec planner status`, raise "
                    "--planner-timeout, or use --via local"
                )

        results = choice_distributions(scorer, prompts, batch_size=batch_size, on_batch=on_batch)
    seconds = time.perf_counter() - start
    for r, (ids, p) in enumerate(results):
        pos = {int(i): j for j, i in enumerate(rows.candidates[r].tolist()) if i >= 0}
        for i, q in zip(ids.tolist(), p.tolist()):
            probs[r, pos[i]] = q
        total = probs[r].sum()
        if total > 0:
            probs[r] /= total
    stats_after = dict(getattr(scorer, "stats", {}) or {})
    cost: dict[str, float] = {"prompts": len(prompts), "seconds": round(seconds, 2)}
    for key in ("prompt_tokens", "choice_tokens", "prefix_tokens_reused", "forward_passes"):
        if key in stats_after:
            cost[key] = int(stats_after[key]) - int(stats_before.get(key, 0))
    if "prompt_tokens" in cost:
        cost["computed_tokens"] = cost["prompt_tokens"] + cost.get("choice_tokens", 0)
        cost["tokens_per_s"] = round(cost["computed_tokens"] / max(seconds, 1e-9), 1)
    return probs, cost


# ------------------------------------------------------------------------------------------------
# The table and its cache
# ------------------------------------------------------------------------------------------------


def train_digest(train: Dataset) -> str:
    """A short digest of the training interactions (user, item, rating, order): a thinned or re-split
    training set never shares a cached table with another."""
    df = train.interactions
    h = hashlib.sha256()
    for col, dtype in (("user", np.int64), ("item", np.int64), ("rating", np.float32)):
        h.update(np.ascontiguousarray(df[col].to_numpy(dtype)).tobytes())
    h.update(f"{train.n_users}/{train.n_items}".encode())
    return h.hexdigest()[:16]


def table_key(
    train: Dataset, split: str, model_id: str, retrieval: RetrievalConfig, stride: int
) -> dict[str, object]:
    """The fingerprint a cached table must carry (``llm_table.FINGERPRINT_KEYS`` plus what else shapes it)."""
    return {
        "dataset": train.name,
        "split": split,
        "train_digest": train_digest(train),
        "model": model_id,
        "prompt_version": PROMPT_VERSION,
        "K": retrieval.k,
        "stride": stride,
        "retrieval": asdict(retrieval),
    }


def cache_path(key: dict[str, object], cache_dir: str | Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else assets.cache_dir() / "llm_tables"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return root / f"{key['dataset']}-{digest}.npz"


def save_atomic(table: LLMTable, path: str | Path) -> Path:
    """Write the table (and a readable ``.json`` sidecar with its fingerprint) via temp file + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        table.save(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    side = path.with_suffix(".json")
    fd, tmp = tempfile.mkstemp(prefix=f".{side.name}.", suffix=".part", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(table.fingerprint, f, indent=2, sort_keys=True)
    os.replace(tmp, side)
    return path


def load_checked(path: str | Path, expected: dict[str, object], n_users: int, n_items: int) -> LLMTable:
    """A table from ``path``, refused (``ConfigError``/``DataError``) unless its fingerprint matches
    every non-None value of ``expected`` and its ids fit the catalog."""
    table = load_llm_table(path)
    check_fingerprint(table, expected, path)
    table.check(n_users, n_items, where=str(path))
    return table


def local_scorer(
    model: str | None = None, device: str = "cpu", num_threads: int | None = None
) -> ChoiceScorer:
    """The in-process transformers backend (the embedded SmolLM2 by default)."""
    from rayrec.llm import make_backend

    kwargs: dict[str, object] = {"device": device, "num_threads": num_threads}
    if model is not None:
        kwargs["model"] = model
    return make_backend("transformers", **kwargs)


def local_model_id(model: str | None) -> str:
    """The id the in-process backend will report for ``model``, without loading it."""
    return model if model is not None else EMBEDDED_MODEL_ID


@dataclass
class TableResult:
    table: LLMTable
    path: Path
    cached: bool  # True: loaded from the cache, no LLM call
    seconds: float  # wall time of this call (load or compute)


def reference_table(
    train: Dataset,
    *,
    split: str,
    model_id: str,
    scorer_factory: Callable[[], ChoiceScorer],
    retrieval: RetrievalConfig | None = None,
    stride: int = 0,
    batch_size: int = 16,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> TableResult:
    """π_LLM for every user of ``train``: from the cache when a table with this key exists, else
    retrieved, scored and cached. ``scorer_factory`` is called only on a miss (loading a model costs
    seconds), and the scorer must report ``model_id`` if it has one."""
    retrieval = retrieval or RetrievalConfig()
    start = time.perf_counter()
    key = table_key(train, split, model_id, retrieval, stride)
    path = cache_path(key, cache_dir)
    if path.is_file() and not force:
        table = load_checked(path, key, train.n_users, train.n_items)
        return TableResult(table, path, True, time.perf_counter() - start)
    rows = retrieve_candidates(train, retrieval, stride)
    if log is not None:
        log(
            f"π_LLM: {len(rows.user_ids)} prompts of K={retrieval.k} candidates with {model_id}; cache {path}"
        )
    scorer = scorer_factory()
    reported = getattr(scorer, "model_id", None)
    if reported is not None and reported != model_id:
        raise ConfigError(
            f"the scorer reports model {reported!r} but the table would be keyed {model_id!r}; pass the "
            "scorer's own model id"
        )
    probs, cost = score_rows(train, rows, scorer, retrieval.recent, stride, batch_size, progress)
    fingerprint = {**key, "stats": cost, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    table = LLMTable(rows.user_ids, rows.steps, rows.candidates, probs, fingerprint)
    table.check(train.n_users, train.n_items, where="computed π_LLM table")
    save_atomic(table, path)
    return TableResult(table, path, False, time.perf_counter() - start)
