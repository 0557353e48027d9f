"""A trained LAAC actor as a ``Recommender``, so ``rayrec.eval.evaluate_ranking`` scores it exactly as it
scores the baselines.

A user's score for every item is the actor's logit at the user's *final* state: the last
``history_len`` items (and ratings) of their training sequence, which is the state a validation target
follows; ``observe(split.valid)`` appends the validation interactions, which is what the test target
follows (the same convention as the SASRec baseline). The state is laid out exactly like the logged
MDP's ``obs`` column (``rayrec.data.logged_mdp.user_states``). Scores exclude nothing: the evaluator
removes seen items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from ray.rllib.core.columns import Columns

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.laac.laac_rl_module import LAACTorchRLModule
from rayrec.data import Dataset
from rayrec.data.logged_mdp import user_states
from rayrec.errors import ConfigError


class LAACRecommender(Recommender):
    """``score(users)`` = the actor's (B, n_items) logits from each user's final state.

    Build it from a trained algorithm (``from_algorithm``) or an actor module (e.g. the best
    checkpoint's), then ``fit(split.train)`` to read the histories (the training itself happened in
    RLlib; ``fit`` learns nothing) and, for test, ``observe(split.valid)``.
    """

    name = "laac"

    def __init__(self, module: LAACTorchRLModule, batch_users: int = 1024) -> None:
        self.module = module.eval()
        self.history_len = int(module.history_len)
        self.n_items = int(module.n_items)
        self.batch_users = batch_users
        self._history: Dataset | None = None
        self._states: np.ndarray | None = None

    @classmethod
    def from_algorithm(cls, algo: Any, **kwargs: Any) -> LAACRecommender:
        """From a built or restored ``LAAC`` algorithm: its actor with the learner's current weights."""
        return cls(algo.inference_module(), **kwargs)

    def fit(self, train: Dataset) -> LAACRecommender:
        """Read each user's training history (their final state follows it)."""
        if train.n_items != self.n_items:
            raise ConfigError(
                f"the actor ranks {self.n_items} items but {train.name} has {train.n_items}; "
                "use the model trained on this dataset"
            )
        self._history = train
        self._states = user_states(train, self.history_len)
        return self

    def observe(self, part: Dataset) -> LAACRecommender:
        """Append ``part``'s interactions (e.g. the validation ones) to every user's history."""
        if self._history is None:
            raise ConfigError("call fit(train) before observe(part)")
        both = pd.concat([self._history.interactions, part.interactions], ignore_index=True)
        self._history = self._history.with_interactions(both)
        self._states = user_states(self._history, self.history_len)
        return self

    @property
    def states(self) -> np.ndarray:
        """(n_users, 2 N) float32: the state each user is scored from."""
        if self._states is None:
            raise ConfigError("call fit(train) first: the recommender has no user histories yet")
        return self._states

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        obs = self.states[np.asarray(users, dtype=np.int64)]
        out = []
        for lo in range(0, len(obs), self.batch_users):
            batch = {Columns.OBS: torch.as_tensor(obs[lo : lo + self.batch_users])}
            out.append(self.module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS].cpu().numpy())
        if not out:
            return np.zeros((0, self.n_items), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)
