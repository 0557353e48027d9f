"""π_LLM top-k: candidates of each user's latest π_LLM row, most probable first, ties by popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayrec.algorithms.baselines.llm_topk import LLMTopKRecommender
from rayrec.algorithms.laac.llm_table import LLMTable
from rayrec.data import build_dataset
from rayrec.errors import DataError


def _train():
    # item popularity: 0 -> 3, 1 -> 2, 2 -> 1, others 0; users 0..2
    df = pd.DataFrame(
        {"user": [0, 1, 2, 0, 1, 0], "item": [0, 0, 0, 1, 1, 2], "rating": 4.0, "timestamp": range(6)}
    )
    return build_dataset("toy", df, item_ids=np.arange(8), user_ids=np.arange(3))


def _table(**kw) -> LLMTable:
    fp = {"dataset": "toy", "model": "m", "prompt_version": "v", "K": 3, "stride": 2}
    args = dict(
        user_ids=np.array([0, 0, 1]),
        steps=np.array([2, 0, 0]),  # user 0: the step-2 row (first here) is the latest
        candidates=np.array([[5, 3, 4], [6, 7, -1], [4, 5, -1]]),
        probs=np.array([[0.2, 0.4, 0.4], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32),
        fingerprint=fp,
    )
    return LLMTable(**{**args, **kw})


def test_scores_rank_candidates_by_probability_then_popularity_and_others_are_minus_inf() -> None:
    train = _train()
    rec = LLMTopKRecommender(_table()).fit(train)
    s = rec.score(np.array([0, 1, 2]))
    assert s.shape == (3, 8) and s.dtype == np.float32
    # user 0 uses its latest row (step 2): candidates 5, 3, 4; 3 and 4 tie at 0.4 (both popularity 0,
    # so the lower id wins), then 5 at 0.2
    order = np.argsort(-s[0], kind="stable")[:3]
    assert order.tolist() == [3, 4, 5]
    assert np.isneginf(s[0, [0, 1, 2, 6, 7]]).all()
    # user 2 has no row: nothing to recommend
    assert np.isneginf(s[2]).all()


def test_ties_are_broken_by_training_popularity() -> None:
    table = _table(
        candidates=np.array([[2, 1, 0], [6, 7, -1], [4, 5, -1]]),
        probs=np.array([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0], [0.5, 0.5, 0]], dtype=np.float32),
    )
    s = LLMTopKRecommender(table).fit(_train()).score(np.array([0]))
    assert np.argsort(-s[0], kind="stable")[:3].tolist() == [0, 1, 2]  # popularity 3 > 2 > 1


def test_table_for_another_catalog_is_refused(tmp_path) -> None:
    bad = _table(candidates=np.array([[5, 3, 40], [6, 7, -1], [4, 5, -1]]))
    with pytest.raises(DataError, match="another catalog"):
        LLMTopKRecommender(bad).fit(_train())
    path = _table().save(tmp_path / "pi.npz")
    assert np.array_equal(LLMTopKRecommender(path).fit(_train()).score(np.array([1]))[0, [4, 5]], [3, 2])
