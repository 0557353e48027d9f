"""Every ranking metric against values worked out by hand on one tiny catalog.

Catalog (8 items, 3 categories) and lists used throughout:

    item:        0    1      2    3    4        5      6    7
    categories: {0}  {0,1}  {1}  {2}  {0,1,2}  {0,2}  {1}  {2}
    train pop:   10   8      6    9    2        1      0    3      (16 training users)

    user 0: [0, 1, 2]  held out {1, 4}  hits [0 1 0]
    user 1: [3, 5, 0]  held out {3}     hits [1 0 0]
    user 2: [4, 5, 3]  held out {2}     hits [0 0 0]
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest import approx

from rayrec.errors import ConfigError, DataError
from rayrec.eval import (
    Ragged,
    as_ragged,
    catalog_coverage,
    category_entropy,
    exclude_seen,
    exposure_gini,
    hit_matrix,
    hit_rate,
    intra_list_distance,
    ndcg,
    novelty,
    precision,
    ranking_report,
    recall,
    reciprocal_rank,
    relevant_counts,
    tail_coverage,
    tail_share,
    top_k,
)
from rayrec.popularity import head_mask

CATS = np.zeros((8, 3), dtype=bool)
for _item, _cs in enumerate([[0], [0, 1], [1], [2], [0, 1, 2], [0, 2], [1], [2]]):
    CATS[_item, _cs] = True
POP = np.array([10, 8, 6, 9, 2, 1, 0, 3])
TOPK = np.array([[0, 1, 2], [3, 5, 0], [4, 5, 3]])
HELD_OUT = [np.array([1, 4]), np.array([3]), np.array([2])]
G = 1 / np.log2(3)  # discount of rank 2


def test_hit_matrix_and_relevant_counts():
    hits = hit_matrix(TOPK, HELD_OUT)
    np.testing.assert_array_equal(hits, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    # a duplicated held-out item counts once
    counts = relevant_counts([np.array([1, 4, 4]), np.array([3]), np.array([])])
    np.testing.assert_array_equal(counts, [2, 1, 0])


def test_accuracy_metrics_by_hand():
    hits = hit_matrix(TOPK, HELD_OUT)
    n_rel = relevant_counts(HELD_OUT)
    np.testing.assert_allclose(hit_rate(hits), [1, 1, 0])
    np.testing.assert_allclose(precision(hits), [1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(recall(hits, n_rel), [1 / 2, 1, 0])
    np.testing.assert_allclose(reciprocal_rank(hits), [1 / 2, 1, 0])
    # user 0: DCG = 1/log2(3); IDCG (2 relevant) = 1 + 1/log2(3)
    np.testing.assert_allclose(ndcg(hits, n_rel), [G / (1 + G), 1, 0])


def test_recall_and_ndcg_are_undefined_without_held_out_items():
    hits = np.array([[False, False]])
    assert np.isnan(recall(hits, np.array([0])))[0]
    assert np.isnan(ndcg(hits, np.array([0])))[0]


def test_ild_jaccard_by_hand():
    # user 0: d(0,1)=1-1/2, d(0,2)=1, d(1,2)=1-1/2 -> 2/3;  user 1: .5, 1, .5 -> 2/3
    # user 2: d(4,5)=1-2/3, d(4,3)=1-1/3, d(5,3)=1-1/2 -> 1/2
    np.testing.assert_allclose(intra_list_distance(TOPK, categories=CATS), [2 / 3, 2 / 3, 1 / 2])


def test_ild_cosine_by_hand():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    # cos(a,b)=0, cos(a,c)=cos(b,c)=1/sqrt2 -> mean distance (1 + 2(1 - 1/sqrt2)) / 3 = (3 - sqrt2) / 3
    out = intra_list_distance(np.array([[0, 1, 2], [0, 3, 3]]), item_vectors=vectors)
    # a zero vector has cosine 0 with everything, so every pair of the second list is at distance 1
    np.testing.assert_allclose(out, [(3 - np.sqrt(2)) / 3, 1.0])


def test_ild_needs_exactly_one_item_description():
    with pytest.raises(ConfigError):
        intra_list_distance(TOPK)
    with pytest.raises(ConfigError):
        intra_list_distance(TOPK, categories=CATS, item_vectors=np.ones((8, 2)))


def test_ild_of_empty_category_sets_and_single_item_lists():
    no_cats = np.zeros((2, 3), dtype=bool)
    np.testing.assert_allclose(intra_list_distance(np.array([[0, 1]]), categories=no_cats), [0.0])
    np.testing.assert_allclose(intra_list_distance(np.array([[0], [1]]), categories=CATS), [0.0, 0.0])


def test_coverage_tail_and_novelty_by_hand():
    assert catalog_coverage(TOPK, 8) == approx(6 / 8)  # items 6 and 7 never shown
    tail = ~head_mask(POP, head_fraction=0.2)  # head = ceil(1.6) = 2 most popular: items 0 (10), 3 (9)
    np.testing.assert_array_equal(tail, [0, 1, 1, 0, 1, 1, 1, 1])
    assert tail_coverage(TOPK, tail) == approx(4 / 6)  # tail items shown: 1, 2, 4, 5 of 6
    assert tail_share(TOPK, tail) == approx(5 / 9)  # 2 + 1 + 2 tail slots of 9
    # -log2(pop/16) per slot: u0 .678 1 1.415; u1 .830 4 .678; u2 3 4 .830
    np.testing.assert_allclose(
        novelty(TOPK, POP, 16),
        [
            (np.log2(16 / 10) + 1 + np.log2(16 / 6)) / 3,
            (np.log2(16 / 9) + 4 + np.log2(16 / 10)) / 3,
            (3 + 4 + np.log2(16 / 9)) / 3,
        ],
    )
    assert novelty(TOPK, POP, 16).mean() == approx(1.825703478513277)


def test_novelty_smooths_never_seen_items_to_one_user():
    # item 6 has popularity 0: counted as 1 of 16 users -> log2(16) = 4 bits, not infinity
    np.testing.assert_allclose(novelty(np.array([[6]]), POP, 16), [4.0])


def test_head_breaks_popularity_ties_towards_lower_ids():
    np.testing.assert_array_equal(~head_mask(np.array([5, 5, 5, 5, 1]), 0.4), [0, 0, 1, 1, 1])
    with pytest.raises(ConfigError):
        head_mask(POP, 1.5)


def test_gini_by_hand():
    # exposure: items 0,3,5 twice; 1,2,4 once; 6,7 never -> sorted [0 0 1 1 1 2 2 2], total 9
    # sum (2r - n - 1) e_(r) = -3 -1 +1 +6 +10 +14 = 27;  G = 27 / (8 * 9)
    assert exposure_gini(TOPK, 8) == approx(27 / 72)
    assert exposure_gini(np.array([[0], [0]]), 4) == approx(3 / 4)  # all on one item: (n-1)/n


def test_category_entropy_by_hand():
    # u0 counts (2,2,0) -> 1 bit; u1 (2,0,2) -> 1 bit; u2 (2,1,3)/6 -> 1/3 log2 3 + 1/6 log2 6 + 1/2
    expected_u2 = np.log2(3) / 3 + np.log2(6) / 6 + 0.5
    np.testing.assert_allclose(category_entropy(TOPK, CATS), [1.0, 1.0, expected_u2])


def test_ranking_report_by_hand():
    report = ranking_report(TOPK, HELD_OUT, train_popularity=POP, categories=CATS, n_train_users=16)
    assert list(report) == [
        "HR@3",
        "NDCG@3",
        "MRR@3",
        "P@3",
        "R@3",
        "ILD@3",
        "coverage",
        "tail_coverage",
        "tail_share",
        "novelty",
        "gini",
        "cat_entropy",
    ]
    assert report == approx(
        {
            "HR@3": 2 / 3,
            "NDCG@3": (G / (1 + G) + 1) / 3,
            "MRR@3": 1 / 2,
            "P@3": 2 / 9,
            "R@3": 1 / 2,
            "ILD@3": 11 / 18,
            "coverage": 6 / 8,
            "tail_coverage": 4 / 6,
            "tail_share": 5 / 9,
            "novelty": 1.825703478513277,
            "gini": 27 / 72,
            "cat_entropy": 1.1530493056757483,
        }
    )


def test_ranking_report_truncates_to_k_and_skips_users_without_held_out_items():
    # k=1 keeps the first column [0, 3, 4]; user 3 has no held-out item: out of HR, in coverage
    topk = np.vstack([TOPK, [[7, 6, 2]]])
    held_out = [*HELD_OUT, np.array([], dtype=np.int64)]
    report = ranking_report(topk, held_out, train_popularity=POP, categories=CATS, n_train_users=16, k=1)
    assert report["HR@1"] == approx(1 / 3)  # only user 1 hits at rank 1
    assert report["R@1"] == approx(1 / 3)
    assert report["coverage"] == approx(4 / 8)  # items 0, 3, 4, 7
    assert report["ILD@1"] == 0.0


def test_ranking_report_cosine_ild_when_vectors_given():
    vectors = np.eye(8)  # orthogonal items: every pair at cosine distance 1
    report = ranking_report(
        TOPK, HELD_OUT, train_popularity=POP, categories=CATS, n_train_users=16, item_vectors=vectors
    )
    assert report["ILD@3"] == approx(1.0)


@pytest.mark.parametrize(
    ("topk", "k", "error"),
    [
        (np.array([[0, 1, 1], [3, 5, 0], [4, 5, 3]]), None, DataError),  # repeated item
        (np.array([[0, 1, 8], [3, 5, 0], [4, 5, 3]]), None, DataError),  # id out of range
        (TOPK.astype(float), None, DataError),  # not ids
        (TOPK, 4, ConfigError),  # k longer than the lists
    ],
)
def test_ranking_report_rejects_bad_input(topk, k, error):
    with pytest.raises(error):
        ranking_report(topk, HELD_OUT, train_popularity=POP, categories=CATS, n_train_users=16, k=k)


def test_ranking_report_needs_some_held_out_item_and_matching_users():
    empty = [np.array([], dtype=np.int64)] * 3
    with pytest.raises(DataError, match="held-out"):
        ranking_report(TOPK, empty, train_popularity=POP, categories=CATS, n_train_users=16)
    with pytest.raises(DataError, match="users"):
        ranking_report(TOPK, HELD_OUT[:2], train_popularity=POP, categories=CATS, n_train_users=16)


def test_top_k_and_exclude_seen():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [0.4, 0.2, 0.8, 0.0]])
    np.testing.assert_array_equal(top_k(scores, 2), [[3, 1], [2, 0]])
    np.testing.assert_array_equal(top_k(scores, 4), [[3, 1, 2, 0], [2, 0, 1, 3]])
    out = exclude_seen(scores, [np.array([3, 1]), np.array([], dtype=np.int64)])
    assert out is scores  # in place
    np.testing.assert_array_equal(top_k(scores, 2), [[2, 0], [2, 0]])
    with pytest.raises(ConfigError):
        top_k(scores, 5)
    with pytest.raises(DataError):
        exclude_seen(scores, [np.array([4]), np.array([0])])
    with pytest.raises(DataError):
        exclude_seen(scores, [np.array([0])])


def test_ragged_accepts_lists_and_csr_like_objects():
    ragged = as_ragged([np.array([2, 0]), np.array([], dtype=np.int64), np.array([1])])
    np.testing.assert_array_equal(ragged.indptr, [0, 2, 2, 3])
    np.testing.assert_array_equal(ragged.indices, [2, 0, 1])
    assert len(ragged) == 3
    same = as_ragged(Ragged(ragged.indptr, ragged.indices))
    np.testing.assert_array_equal(same.indices, ragged.indices)
    hits = hit_matrix(np.array([[0, 1], [0, 1], [0, 1]]), ragged)
    np.testing.assert_array_equal(hits, [[1, 0], [0, 0], [0, 1]])


def test_hit_matrix_rejects_negative_ids():
    with pytest.raises(DataError):
        hit_matrix(np.array([[-1, 0]]), [np.array([0])])
    with pytest.raises(DataError):
        hit_matrix(np.array([[1, 0]]), [np.array([-3])])
