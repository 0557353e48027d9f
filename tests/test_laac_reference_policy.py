"""π_LLM: candidate retrieval (no LLM), scoring with the real embedded SmolLM2 on a handful of prompts,
the disk cache (hit without any backend call, refused for another fingerprint), and a planner that
falls back never reaching the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rayrec.algorithms.laac.llm_table import random_llm_table
from rayrec.algorithms.laac.reference_policy import (
    PROMPT_VERSION,
    ReferencePolicyError,
    RetrievalConfig,
    build_prompts,
    cache_path,
    load_checked,
    local_model_id,
    local_scorer,
    reference_table,
    retrieve_candidates,
    save_atomic,
    table_key,
)
from rayrec.data import leave_last_out, load_dataset, make_world
from rayrec.errors import ConfigError


def _seen(train) -> np.ndarray:
    seen = np.zeros((train.n_users, train.n_items), dtype=bool)
    seen[train.interactions["user"], train.interactions["item"]] = True
    return seen


def _assert_valid_rows(train, rows, k: int) -> None:
    seen = _seen(train)
    assert rows.candidates.shape == (len(rows.user_ids), k)
    for u, cands in zip(rows.user_ids, rows.candidates):
        real = cands[cands >= 0]
        assert len(real) == k, "every source ran short although the catalog has unseen items"
        assert len(set(real.tolist())) == k, cands
        assert not seen[u, real].any(), (u, cands)


@pytest.fixture(scope="module")
def ml100k_train():
    return leave_last_out(load_dataset("ml-100k")).train


def test_ml100k_candidates_are_distinct_unseen_and_mix_head_and_tail(ml100k_train) -> None:
    train = ml100k_train
    config = RetrievalConfig(k=10)
    rows = retrieve_candidates(train, config)
    counts = np.bincount(train.interactions["user"], minlength=train.n_users)
    assert np.array_equal(rows.user_ids, np.flatnonzero(counts)) and not rows.steps.any()
    _assert_valid_rows(train, rows, 10)
    pop = train.item_popularity()
    tail = pop < np.sort(pop)[::-1][int(np.ceil(0.2 * train.n_items)) - 1]
    tail_share = tail[rows.candidates].mean()
    assert 0.15 < tail_share < 0.9, tail_share  # the genre-tail quota shows, popular items too
    again = retrieve_candidates(train, config)
    assert np.array_equal(again.candidates, rows.candidates)  # deterministic for a seed
    other = retrieve_candidates(train, RetrievalConfig(k=10, seed=1))
    assert not np.array_equal(other.candidates, rows.candidates)  # the tail sample follows the seed


def test_prompts_quote_recent_titles_and_offer_exactly_the_candidates(ml100k_train) -> None:
    rows = retrieve_candidates(ml100k_train, RetrievalConfig(k=6, recent=3), users=[0, 1])
    prompts = build_prompts(ml100k_train, rows, recent=3)
    assert len(prompts) == 2
    for p, cands in zip(prompts, rows.candidates):
        assert sorted(p.ids) == sorted(cands.tolist())
        assert len(p.choices) == 6
    last = ml100k_train.interactions[ml100k_train.interactions["user"] == 0].iloc[-1]
    assert json.dumps(str(ml100k_train.item_titles[int(last["item"])]))[1:-1] in prompts[0].text


def test_stride_rows_cover_each_users_sequence_and_read_only_the_past() -> None:
    train = leave_last_out(make_world(n_users=20, n_items=40, n_categories=4, seed=1).dataset).train
    lengths = np.bincount(train.interactions["user"], minlength=train.n_users)
    rows = retrieve_candidates(train, RetrievalConfig(k=5, recent=3), stride=4)
    for u in range(train.n_users):
        assert rows.steps[rows.user_ids == u].tolist() == list(range(0, lengths[u], 4))
    _assert_valid_rows(train, rows, 5)
    prompts = build_prompts(train, rows, recent=3, stride=4)
    first = prompts[int(np.flatnonzero(rows.steps == 0)[0])]
    assert '"recently watched (title, rating 1-5)": []' in first.text  # step 0: no history yet


@pytest.mark.parametrize(
    ("field", "value"), [("k", 0), ("recent", -1), ("share_cooc", 1.5), ("head_fraction", 1.0)]
)
def test_retrieval_settings_out_of_range_are_config_errors(field, value) -> None:
    with pytest.raises(ConfigError, match=field):
        RetrievalConfig(**{field: value})
    with pytest.raises(ConfigError, match="exceeds 1"):
        RetrievalConfig(share_cooc=0.7, share_popular=0.5)


# --- scoring with the embedded SmolLM2, and the cache ---------------------------------------------------


class CountingScorer:
    """The real backend, with its calls counted (the test's question is *whether* it is called)."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.model_id = backend.model_id
        self.stats = backend.stats
        self.calls = 0

    def score_choices(self, prompts, choices):
        self.calls += 1
        return self.backend.score_choices(prompts, choices)


@pytest.fixture(scope="module")
def smollm2():
    return local_scorer(num_threads=1)


@pytest.fixture(scope="module")
def tiny_train():
    world = make_world(n_users=5, n_items=30, n_categories=3, mean_interactions=6, min_interactions=4, seed=2)
    return leave_last_out(world.dataset).train


def test_table_is_computed_once_then_loaded_without_any_backend_call(smollm2, tiny_train, tmp_path) -> None:
    train = tiny_train
    retrieval = RetrievalConfig(k=4, recent=2)
    scorer = CountingScorer(smollm2)
    made = []

    def factory():
        made.append(1)
        return scorer

    kwargs = dict(
        split="leave_last_out", model_id=local_model_id(None), retrieval=retrieval, cache_dir=tmp_path
    )
    first = reference_table(train, scorer_factory=factory, batch_size=2, progress=False, **kwargs)
    assert not first.cached and len(made) == 1 and scorer.calls == 3  # 5 prompts, 2 per call
    table = first.table
    assert table.candidates.shape == (train.n_users, 4)
    assert np.allclose(table.probs.sum(1), 1, atol=1e-5) and (table.probs > 0).all()
    assert not _seen(train)[table.user_ids[:, None], table.candidates].any()
    fp = table.fingerprint
    assert fp["model"] == "smollm2-135m-instruct-gguf" and fp["prompt_version"] == PROMPT_VERSION
    assert fp["K"] == 4 and fp["stride"] == 0 and fp["dataset"] == train.name
    assert fp["stats"]["prompts"] == 5 and fp["stats"]["computed_tokens"] > 5 * 100
    assert first.path.is_file() and json.loads(first.path.with_suffix(".json").read_text())["K"] == 4
    assert not list(tmp_path.glob(".*.part"))  # the temporary files were renamed away

    second = reference_table(train, scorer_factory=factory, progress=False, **kwargs)
    assert second.cached and len(made) == 1 and scorer.calls == 3  # no scorer built, no call made
    assert second.path == first.path
    assert np.array_equal(second.table.probs, table.probs)
    assert np.array_equal(second.table.candidates, table.candidates)

    # Another K or model is another key: a different file, computed afresh.
    assert cache_path(table_key(train, "leave_last_out", "other-model", retrieval, 0), tmp_path) != first.path


def test_cache_from_another_dataset_or_model_is_refused(tiny_train, tmp_path) -> None:
    train = tiny_train
    retrieval = RetrievalConfig(k=4, recent=2)
    key = table_key(train, "leave_last_out", local_model_id(None), retrieval, 0)
    path = cache_path(key, tmp_path)
    # A table of the right shape but computed for another dataset sits where this key's table belongs.
    wrong = random_llm_table(train.user_sequences(), train.n_items, 4, dataset="ml-100k")
    save_atomic(wrong, path)
    with pytest.raises(ConfigError, match=r"dataset: table has 'ml-100k'"):
        reference_table(train, scorer_factory=lambda: None, progress=False, **_kw(retrieval, tmp_path))
    wrong.fingerprint = {**key, "model": "another-llm"}
    save_atomic(wrong, path)
    with pytest.raises(ConfigError, match=r"model: table has 'another-llm'"):
        reference_table(train, scorer_factory=lambda: None, progress=False, **_kw(retrieval, tmp_path))
    with pytest.raises(ConfigError, match="recompute it"):
        load_checked(path, {"model": local_model_id(None)}, train.n_users, train.n_items)


def _kw(retrieval, cache_dir):
    return dict(
        split="leave_last_out", model_id=local_model_id(None), retrieval=retrieval, cache_dir=cache_dir
    )


def test_planner_fallbacks_never_reach_the_cache(ray_session, tiny_train, tmp_path) -> None:
    """No planner app is running: the client falls back (uniform) and π_LLM refuses to cache that."""
    from rayrec.llm.planner_client import PlannerClient

    client = PlannerClient("no-such-planner-h9", timeout_s=5)
    retrieval = RetrievalConfig(k=4, recent=2)
    with pytest.raises(ReferencePolicyError, match="fell back"):
        reference_table(
            tiny_train,
            split="leave_last_out",
            model_id="planner-model",
            scorer_factory=lambda: client,
            retrieval=retrieval,
            cache_dir=tmp_path,
            progress=False,
        )
    assert client.stats["fallbacks"] > 0
    assert not list(tmp_path.glob("*.npz"))
