"""SASRec on a world where the next item is a fixed function of the previous one.

Items follow one random cycle through the whole catalog (item -> successor), each user walks it from a
random start. Popularity cannot know where a user is; a sequence model that reads the last item can,
so SASRec must find the held-out item almost always while popularity mostly misses it.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from rayrec.algorithms.baselines import PopularityRecommender
from rayrec.algorithms.baselines.sasrec import SASRecConfig, SASRecRecommender, training_windows
from rayrec.data import Split, build_dataset, leave_last_out
from rayrec.errors import ConfigError
from rayrec.eval import evaluate_ranking

N_ITEMS, N_USERS, LENGTH = 60, 150, 12
SMALL = {
    "dim": 32,
    "n_heads": 2,
    "n_blocks": 1,
    "max_len": 8,
    "stride": 8,
    "dropout": 0.1,
    "lr": 1e-2,
    "batch_size": 64,
    "max_epochs": 40,
    "patience": 5,
    "init_std": 0.1,
}


def _cycle_split(seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(N_ITEMS)
    successor = np.empty(N_ITEMS, dtype=np.int64)
    successor[order] = np.roll(order, -1)
    rows = []
    for user in range(N_USERS):
        item = int(rng.integers(N_ITEMS))
        for t in range(LENGTH):
            rows.append((user, item, 4.0, t))
            item = int(successor[item])
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return leave_last_out(build_dataset("cycle", df, item_ids=np.arange(N_ITEMS)))


@pytest.fixture(scope="module")
def cycle() -> Split:
    return _cycle_split()


@pytest.fixture(scope="module")
def fitted(cycle: Split) -> SASRecRecommender:
    return SASRecRecommender(**SMALL).fit(cycle.train, cycle)


def test_learns_the_successor_and_beats_popularity(cycle: Split, fitted: SASRecRecommender) -> None:
    valid = evaluate_ranking(fitted, cycle, relevance="all", k=10, on="valid").metrics
    for_test = copy.deepcopy(fitted).observe(cycle.valid)  # the test item follows the valid one
    test = evaluate_ranking(for_test, cycle, relevance="all", k=10, on="test").metrics
    pop = evaluate_ranking(PopularityRecommender().fit(cycle.train), cycle, relevance="all", k=10).metrics
    assert valid["HR@10"] >= 0.95, valid
    assert test["HR@10"] >= 0.95, test
    assert pop["HR@10"] < 0.5, pop
    assert test["NDCG@10"] > pop["NDCG@10"] + 0.4
    assert fitted.best_valid == pytest.approx(valid["NDCG@10"])  # the kept weights are the best epoch's


def test_scores_cover_the_whole_catalog_seen_items_included(cycle: Split, fitted: SASRecRecommender) -> None:
    users = np.arange(N_USERS)
    scores = fitted.score(users)
    assert scores.shape == (N_USERS, N_ITEMS) and scores.dtype == np.float32
    assert np.isfinite(scores).all()  # nothing masked to -inf: excluding seen items is the evaluator's job
    last = np.array([s[-1] for s in cycle.train.user_sequences()])
    # the item just seen is scored like any other (finite), not removed
    assert np.isfinite(scores[users, last]).all()


def test_same_seed_same_scores_other_seed_differs(cycle: Split) -> None:
    quick = {**SMALL, "max_epochs": 2}
    a = SASRecRecommender(**quick, seed=3).fit(cycle.train).score(np.arange(10))
    b = SASRecRecommender(**quick, seed=3).fit(cycle.train).score(np.arange(10))
    c = SASRecRecommender(**quick, seed=4).fit(cycle.train).score(np.arange(10))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_split_conditions_test_scores_on_the_valid_item(cycle: Split) -> None:
    rec = SASRecRecommender(**{**SMALL, "max_epochs": 1}).fit_split(cycle)
    valid_items = dict(zip(cycle.valid.interactions["user"], cycle.valid.interactions["item"], strict=True))
    assert all(rec._history[u][-1] == i for u, i in valid_items.items())


def test_windows_count_every_target_once_with_context() -> None:
    seq = np.arange(23)
    x, y = training_windows([seq], max_len=8, stride=3, pad_id=99)
    counted = y[y >= 0]
    assert sorted(counted.tolist()) == list(range(1, 23))  # every next item, once
    for row_x, row_y in zip(x, y, strict=True):
        for j in np.flatnonzero(row_y >= 0):
            assert row_y[j] == row_x[j] + 1  # target follows its input
            context = int((row_x[: j + 1] != 99).sum())
            assert context >= min(row_x[j] + 1, 8 - 3 + 1)
    # stride 1 = RecBole's per-prefix samples: one counted target per window, full context
    x1, y1 = training_windows([seq], max_len=8, stride=1, pad_id=99)
    assert ((y1 >= 0).sum(1)[:-1] == 1).all() and len(x1) == 22 - 8 + 1


@pytest.mark.parametrize(
    "bad",
    [
        {"max_len": 0},
        {"stride": 60},
        {"dim": 30, "n_heads": 4},
        {"dropout": 1.0},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"weight_decay": -1.0},
        {"batch_size": 2.5},
        {"init_std": 0.0},
        {"patience": True},
    ],
)
def test_bad_config_raises(bad: dict) -> None:
    with pytest.raises(ConfigError):
        SASRecConfig(**bad)


def test_unknown_option_names_the_options() -> None:
    with pytest.raises(ConfigError, match="max_len"):
        SASRecRecommender(maxlen=50)
