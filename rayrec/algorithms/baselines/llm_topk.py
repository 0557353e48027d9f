"""π_LLM top-k: recommend the LLM reference policy's own candidates, most probable first.

The row of ``rayrec.algorithms.laac.llm_table`` a user's final state falls in (the user's row with
the largest ``steps``, i.e. the latest ``llm_stride`` block; the only row when π_LLM is asked once per
user) gives K candidates and their probabilities. Items outside that candidate set score −inf;
candidates rank by π_LLM, ties by training popularity, then by lower id. This is the "what does the LLM
alone recommend" row of the LAAC study: its accuracy and novelty bound what LAAC can borrow from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.laac.llm_table import LLMTable, load_llm_table
from rayrec.data import Dataset


class LLMTopKRecommender(Recommender):
    name = "pi_llm_topk"

    def __init__(self, table: LLMTable | str | Path) -> None:
        self.table = table if isinstance(table, LLMTable) else load_llm_table(table)
        self._where = "π_LLM table" if isinstance(table, LLMTable) else str(table)
        self._scores: np.ndarray | None = None  # (n_users, K) rank scores of each user's candidates
        self._cands: np.ndarray | None = None  # (n_users, K), -1 = none
        self._n_items = 0

    def fit(self, train: Dataset) -> LLMTopKRecommender:
        t = self.table
        t.check(train.n_users, train.n_items, where=self._where)
        popularity = train.item_popularity()
        k = t.k
        # Each user's latest row: sort rows by (user, step) and keep the last of every user.
        order = np.lexsort((t.steps, t.user_ids))
        last = order[np.append(t.user_ids[order][1:] != t.user_ids[order][:-1], True)]
        cands = np.full((train.n_users, k), -1, dtype=np.int64)
        probs = np.zeros((train.n_users, k), dtype=np.float64)
        cands[t.user_ids[last]] = t.candidates[last]
        probs[t.user_ids[last]] = t.probs[last]
        valid = cands >= 0
        safe = np.where(valid, cands, 0)
        pop = np.where(valid, popularity[safe], -1)
        # Rank within each row by (prob desc, popularity desc, id asc); pads last.
        rows = np.repeat(np.arange(train.n_users), k)
        flat = np.lexsort((safe.ravel(), -pop.ravel(), -np.where(valid, probs, -1.0).ravel(), rows))
        position = np.empty(train.n_users * k, dtype=np.int64)
        position[flat] = np.tile(np.arange(k), train.n_users)
        scores = (k - position.reshape(train.n_users, k)).astype(np.float32)  # k for the best, 1 for the last
        self._scores = np.where(valid, scores, -np.inf).astype(np.float32)
        self._cands = cands
        self._n_items = train.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._scores is None or self._cands is None:
            raise RuntimeError("call fit() before score()")
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), self._n_items), -np.inf, dtype=np.float32)
        cands, scores = self._cands[users], self._scores[users]
        valid = cands >= 0
        rows = np.broadcast_to(np.arange(len(users))[:, None], cands.shape)
        out[rows[valid], cands[valid]] = scores[valid]
        return out
