"""The offline evaluator in ``rayrec.eval``: relevance rules, the long-tail head, the published table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayrec.algorithms.baselines import PopularityRecommender, RandomRecommender
from rayrec.data import (
    Split,
    build_dataset,
    default_relevance,
    leave_last_out,
    load_dataset,
    long_tail_imbalance,
    make_world,
)
from rayrec.errors import ConfigError, DataError
from rayrec.eval import Relevance, evaluate_ranking, ranking_report
from rayrec.popularity import head_mask


class FixedScorer:
    """Any object with ``score`` is evaluable: no rayrec base class needed (the Scorer protocol)."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.table[users]


def test_relevance_rules_parse_and_print() -> None:
    assert Relevance.parse("all") == Relevance(None) and str(Relevance(None)) == "all"
    assert Relevance.parse(" Rating >= 4 ").min_rating == 4.0
    assert str(Relevance.parse("rating>=2.5")) == "rating>=2.5"
    np.testing.assert_array_equal(Relevance.parse("rating>=1").mask([0.0, 1.0, 0.0]), [False, True, False])
    for bad in ("rating>4", "click", "rating>=", "rating>=nan"):
        with pytest.raises(ConfigError, match="relevance rule"):
            Relevance.parse(bad)


def _clicks() -> Split:
    """KuaiRand-like exposures (rating = is_click), items a..e, each user's last 2 rows held out.

    user 0: train a, b; held out c (unclicked), d (clicked)
    user 1: train a, c; held out e, b (both unclicked)
    user 2: train b, c; held out d, e (both clicked)
    """
    rows = [
        ("u0", "a", 1, 1), ("u0", "b", 1, 2), ("u0", "c", 0, 3), ("u0", "d", 1, 4),
        ("u1", "a", 1, 1), ("u1", "c", 1, 2), ("u1", "e", 0, 3), ("u1", "b", 0, 4),
        ("u2", "b", 1, 1), ("u2", "c", 1, 2), ("u2", "d", 1, 3), ("u2", "e", 1, 4),
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ds = build_dataset(
        "kuairand-like",
        df,
        item_ids=np.array(list("abcde")),
        categories=np.eye(5, dtype=bool),
        category_names=[f"c{i}" for i in range(5)],
        meta={"rating": "is_click"},
    )
    return leave_last_out(ds, n_valid=0, n_test=2)


def test_unclicked_held_out_rows_are_not_hits() -> None:
    split = _clicks()
    assert default_relevance(split.test) == "rating>=1"
    # Every user's top-1 is the first held-out exposure: unclicked for users 0 and 1, clicked for 2.
    top = np.zeros((3, 5), dtype=np.float32)
    top[0, 2] = top[1, 4] = top[2, 3] = 1.0  # u0 -> c, u1 -> e, u2 -> d
    scorer = FixedScorer(top)
    every_row = evaluate_ranking(scorer, split, relevance="all", k=1)
    clicks = evaluate_ranking(scorer, split, relevance=default_relevance(split.test), k=1)
    assert every_row.metrics["HR@1"] == 1.0  # the old behaviour: any exposure counts
    assert (every_row.users_ranked, every_row.users_evaluated) == (3, 3)
    # user 1 has no click held out: ranked (its list counts for coverage) but not in the accuracy mean;
    # user 0's unclicked c is no hit, user 2's clicked d is.
    assert (clicks.users_ranked, clicks.users_evaluated) == (3, 2)
    assert clicks.metrics["HR@1"] == 0.5
    assert clicks.relevance == "rating>=1"
    assert clicks.metrics["coverage"] == every_row.metrics["coverage"] == 3 / 5
    with pytest.raises(DataError, match="no user has a relevant test item"):
        evaluate_ranking(scorer, split, relevance="rating>=2", k=1)


def test_default_relevance_follows_what_the_rating_means() -> None:
    ml = load_dataset("ml-100k")
    assert default_relevance(ml) == "all"  # leave-last-out on ML-100K: the next rated movie, any rating
    assert default_relevance(make_world(n_users=20, n_items=30, seed=0).dataset) == "all"
    kuairec = ml.with_interactions(ml.interactions.head(5), rating="watch_ratio")
    assert default_relevance(kuairec) == "rating>=2"


def test_long_tail_study_uses_the_head_of_the_untouched_train_set() -> None:
    split = leave_last_out(make_world(n_users=300, n_items=200, zipf=1.1, seed=3).dataset)
    original_head = head_mask(split.train.item_popularity(), 0.3)
    thinned, _ = long_tail_imbalance(split.train, keep=0.1, head_fraction=0.3, seed=0)
    np.testing.assert_array_equal(thinned.meta["head_items"], original_head)
    study = Split(thinned, split.valid, split.test)
    scorer = RandomRecommender(seed=0).fit(thinned)
    result = evaluate_ranking(scorer, study, relevance="all", k=10)  # head_fraction left at 0.2
    assert "meta['head_items']" in result.head
    # The tail metrics are those of the study's head (30% of the original train), not of a 20% head
    # recomputed from the thinned counts.
    test_users = split.test.interactions["user"].to_numpy()
    ranked = np.unique(test_users)
    lists = _top_lists(RandomRecommender(seed=0).fit(thinned), study, ranked, 10)
    pop = thinned.item_popularity()
    args = {"train_popularity": pop, "categories": thinned.categories, "n_train_users": 300, "k": 10}
    held = [split.test.interactions["item"].to_numpy()[test_users == u] for u in ranked]
    expected = ranking_report(lists, held, head_items=original_head, **args)
    recomputed = ranking_report(lists, held, head_items=head_mask(pop, 0.2), **args)
    assert result.metrics["tail_share"] == pytest.approx(expected["tail_share"])
    assert result.metrics["tail_share"] != pytest.approx(recomputed["tail_share"])
    plain = evaluate_ranking(RandomRecommender(seed=0).fit(split.train), split, relevance="all", k=10)
    assert plain.head == "top 0.2 of training items by popularity"


def _top_lists(scorer: RandomRecommender, split: Split, users: np.ndarray, k: int) -> np.ndarray:
    """Top-k lists of ``users`` built by hand: the same exclusion of train and valid items."""
    from rayrec.eval import exclude_seen, top_k

    train, valid = split.train.user_sequences(), split.valid.user_sequences()
    seen = [np.concatenate([train[u], valid[u]]) for u in users]
    return top_k(exclude_seen(np.array(scorer.score(users), copy=True), seen), k)


# The README's offline table (ml-100k, leave-last-out, k = 10, seed 0), to 4 decimals.
README_TABLE = {
    "popularity": {
        "HR@10": 0.0838, "NDCG@10": 0.0433, "MRR@10": 0.0310, "P@10": 0.0084, "R@10": 0.0838,
        "ILD@10": 0.8237, "coverage": 0.0541, "tail_coverage": 0.0000, "tail_share": 0.0000,
        "novelty": 1.2024, "gini": 0.9856, "cat_entropy": 3.1618,
    },
    "random": {
        "HR@10": 0.0127, "NDCG@10": 0.0069, "MRR@10": 0.0050, "P@10": 0.0013, "R@10": 0.0127,
        "ILD@10": 0.8170, "coverage": 0.9958, "tail_coverage": 0.9963, "tail_share": 0.8319,
        "novelty": 5.6691, "gini": 0.2399, "cat_entropy": 2.7708,
    },
}  # fmt: skip


def test_evaluator_reproduces_the_readme_baseline_table() -> None:
    ds = load_dataset("ml-100k")
    split = leave_last_out(ds)
    for name, rec in (("popularity", PopularityRecommender()), ("random", RandomRecommender(seed=0))):
        result = evaluate_ranking(rec.fit(split.train), split, relevance=default_relevance(ds), k=10)
        assert {m: round(v, 4) for m, v in result.metrics.items()} == README_TABLE[name], name
        assert (result.users_ranked, result.users_evaluated) == (943, 943)


def test_evaluator_rejects_bad_scores_and_options() -> None:
    split = _clicks()
    with pytest.raises(DataError, match="one score per catalog item"):
        evaluate_ranking(FixedScorer(np.zeros((3, 4))), split, relevance="all", k=1)
    with pytest.raises(ConfigError, match="on must be"):
        evaluate_ranking(FixedScorer(np.zeros((3, 5))), split, relevance="all", on="train")
    with pytest.raises(ConfigError, match="head_fraction"):
        evaluate_ranking(FixedScorer(np.zeros((3, 5))), split, relevance="all", head_fraction=2.0)


def test_group_by_user_and_take_rows_match_python_lists() -> None:
    from rayrec.eval import group_by_user, take_rows

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 7, 60), rng.integers(0, 50, 60)
    ragged = group_by_user(users, items, 8)  # user 7 has no row
    rows = np.array([5, 7, 0, 5])
    picked = take_rows(ragged, rows)
    for r, u in enumerate(rows):
        np.testing.assert_array_equal(
            picked.indices[picked.indptr[r] : picked.indptr[r + 1]], items[users == u]
        )
    with pytest.raises(DataError, match="user ids must lie in"):
        group_by_user(np.array([8]), np.array([0]), 8)
