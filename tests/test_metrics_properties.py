"""Properties every metric must keep on random inputs (hypothesis), beyond the hand-worked cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rayrec.eval import (
    catalog_coverage,
    category_entropy,
    dominating_categories,
    exclude_seen,
    exposure_gini,
    hit_matrix,
    intra_list_distance,
    novelty,
    ranking_report,
    relevant_counts,
    session_report,
    tail_coverage,
    top_k,
)
from rayrec.popularity import head_mask

FAST = settings(max_examples=60, deadline=None)


@st.composite
def ranking_case(draw):
    """Random catalog, categories, distinct-item top-k lists and held-out sets."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_items = draw(st.integers(2, 30))
    k = draw(st.integers(1, n_items))
    n_users = draw(st.integers(1, 12))
    n_cat = draw(st.integers(1, 6))
    topk = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    held_out = [rng.choice(n_items, rng.integers(0, n_items + 1), replace=False) for _ in range(n_users)]
    held_out[0] = rng.choice(n_items, rng.integers(1, n_items + 1), replace=False)  # at least one evaluable
    categories = rng.random((n_items, n_cat)) < 0.4
    popularity = rng.integers(0, 50, n_items)
    return topk, held_out, categories, popularity, k


def _report(topk, held_out, categories, popularity) -> dict[str, float]:
    return ranking_report(
        topk, held_out, train_popularity=popularity, categories=categories, n_train_users=50
    )


@FAST
@given(ranking_case())
def test_report_values_stay_in_their_ranges(case):
    topk, held_out, categories, popularity, k = case
    n_cat = categories.shape[1]
    report = _report(topk, held_out, categories, popularity)
    for key in (f"HR@{k}", f"NDCG@{k}", f"MRR@{k}", f"P@{k}", f"R@{k}", f"ILD@{k}"):
        assert 0.0 <= report[key] <= 1.0 + 1e-9, key
    for key in ("coverage", "tail_coverage", "tail_share"):
        assert 0.0 <= report[key] <= 1.0, key
    assert report[f"MRR@{k}"] <= report[f"HR@{k}"] + 1e-12
    assert 0.0 <= report["gini"] < 1.0
    assert 0.0 <= report["novelty"] <= np.log2(50) + 1e-9
    assert 0.0 <= report["cat_entropy"] <= np.log2(n_cat) + 1e-9


@FAST
@given(ranking_case())
def test_hit_matrix_matches_set_lookup(case):
    topk, held_out, _, _, _ = case
    expected = np.array([[item in set(h.tolist()) for item in row] for row, h in zip(topk, held_out)])
    np.testing.assert_array_equal(hit_matrix(topk, held_out), expected)
    np.testing.assert_array_equal(relevant_counts(held_out), [len(set(h.tolist())) for h in held_out])


@FAST
@given(ranking_case())
def test_ranking_held_out_items_first_gives_perfect_ndcg(case):
    _, held_out, categories, popularity, k = case
    n_items = len(categories)
    rest = [np.setdiff1d(np.arange(n_items), h) for h in held_out]
    topk = np.stack([np.concatenate([h, r])[:k] for h, r in zip(held_out, rest)])
    report = _report(topk, held_out, categories, popularity)
    assert abs(report[f"NDCG@{k}"] - 1.0) < 1e-9
    assert report[f"HR@{k}"] == 1.0 and report[f"MRR@{k}"] == 1.0


@FAST
@given(st.integers(1, 8), st.integers(1, 10), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_lists_of_identical_items_have_zero_ild(n_users, k, n_cat, seed):
    rng = np.random.default_rng(seed)
    row = rng.random(n_cat) < 0.5
    categories = np.tile(row, (k, 1))  # k items sharing one category set
    vectors = np.tile(rng.normal(size=3), (k, 1))
    topk = np.tile(np.arange(k), (n_users, 1))
    np.testing.assert_allclose(intra_list_distance(topk, categories=categories), 0.0, atol=1e-12)
    np.testing.assert_allclose(intra_list_distance(topk, item_vectors=vectors), 0.0, atol=1e-9)


@FAST
@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_uniform_all_item_lists_cover_everything_with_zero_gini(n_items, repeats, seed):
    # every item shown `repeats` times: each user sees the whole catalog in a random order
    rng = np.random.default_rng(seed)
    topk = np.stack([rng.permutation(n_items) for _ in range(repeats)])
    tail = ~head_mask(rng.integers(0, 9, n_items))
    assert catalog_coverage(topk, n_items) == 1.0
    assert tail_coverage(topk, tail) == (1.0 if tail.any() else 0.0)
    assert abs(exposure_gini(topk, n_items)) < 1e-12


@FAST
@given(st.integers(2, 40), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_long_tail_head_has_the_most_popular_items(n_items, head_fraction, seed):
    popularity = np.random.default_rng(seed).integers(0, 20, n_items)
    tail = ~head_mask(popularity, head_fraction)
    assert (~tail).sum() == int(np.ceil(head_fraction * n_items))
    if tail.any() and (~tail).any():
        assert popularity[~tail].min() >= popularity[tail].max()


@FAST
@given(st.integers(1, 10), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_single_category_lists_have_zero_entropy_and_uniform_lists_maximal(n_users, n_cat, seed):
    categories = np.eye(n_cat, dtype=bool)  # item c has category c only
    same = np.zeros((n_users, 3), dtype=np.int64) + np.random.default_rng(seed).integers(0, n_cat)
    # same item repeated stands for "same category"; category_entropy does not require distinct ids
    np.testing.assert_allclose(category_entropy(same, categories), 0.0)
    spread = np.tile(np.arange(n_cat), (n_users, 1))
    np.testing.assert_allclose(category_entropy(spread, categories), np.log2(n_cat))


@FAST
@given(st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_novelty_is_zero_for_items_everyone_saw(n_users, seed):
    popularity = np.full(5, n_users)
    topk = np.random.default_rng(seed).integers(0, 5, (3, 2))
    np.testing.assert_allclose(novelty(topk, popularity, n_users), 0.0)


@FAST
@given(st.integers(1, 6), st.integers(2, 30), st.integers(0, 2**32 - 1))
def test_top_k_after_exclude_seen_is_the_best_unseen(n_users, n_items, seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((n_users, n_items))
    seen = [rng.choice(n_items, rng.integers(0, n_items // 2 + 1), replace=False) for _ in range(n_users)]
    k = int(rng.integers(1, n_items - n_items // 2 + 1))
    expected = []
    for u in range(n_users):
        unseen = np.setdiff1d(np.arange(n_items), seen[u])
        expected.append(unseen[np.argsort(-scores[u, unseen])][:k])
    np.testing.assert_array_equal(top_k(exclude_seen(scores, seen), k), np.stack(expected))


@st.composite
def sessions_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_cat = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=15))
    rewards = [rng.random(n) * 3 for n in lengths]
    categories = [rng.random((n, n_cat)) < 0.5 for n in lengths]
    dominating = rng.random(n_cat) < 0.5
    return rewards, categories, dominating


@FAST
@given(sessions_case())
def test_session_report_identities_and_ranges(case):
    rewards, categories, dominating = case
    report = session_report(rewards, categories, dominating)
    r_tra, r_each, length = report["R_tra"][0], report["R_each"][0], report["Len"][0]
    assert abs(r_each * length - r_tra) < 1e-9  # R_each = total reward / total steps = R_tra / Len
    assert 0.0 <= report["MCD"][0] <= 1.0
    assert 0.0 <= report["cat_coverage"][0] <= 1.0
    assert 0.0 <= report["cat_entropy"][0] <= np.log2(len(dominating)) + 1e-9
    if len(rewards) > 1:
        assert all(half >= 0.0 for _, half in report.values())
    everything = session_report(rewards, [np.ones_like(c) for c in categories], np.ones_like(dominating))
    assert everything["MCD"][0] == 1.0 and everything["cat_coverage"][0] == 1.0


@FAST
@given(st.integers(1, 8), st.floats(0.01, 1.0), st.integers(0, 2**32 - 1))
def test_dominating_categories_are_the_smallest_prefix_reaching_top_rate(n_cat, top_rate, seed):
    rng = np.random.default_rng(seed)
    categories = rng.random((10, n_cat)) < 0.5
    categories[:, 0] = True  # every interaction carries some category
    train = rng.integers(0, 10, 60)
    mask = dominating_categories(train, categories, top_rate)
    counts = np.bincount(train, minlength=10) @ categories.astype(int)
    covered = counts[mask].sum()
    assert covered >= top_rate * counts.sum() - 1e-9
    if mask.any():
        assert counts[mask].min() >= counts[~mask].max(initial=0)  # the most frequent ones
        assert covered - counts[mask].min() < top_rate * counts.sum()  # none can be dropped
