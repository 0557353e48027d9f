"""A recommender trained offline, acting in the user simulator: the long-term half of the LAAC study.

The offline models (LAAC's actor, BC, discrete CQL: one inference path, ``ACTION_DIST_INPUTS`` of an
RLModule; SASRec through its own encoder) rank the catalog from a *state*: the last N items and their
ratings, laid out like the logged MDP's ``obs`` column (``rayrec.data.logged_mdp``). In the simulator
the state is the session itself: the observation's ``history_items`` (pad = n_items, as in the logged
MDP) and ``history_rewards`` in [0, 1]. A reward r is mapped back to the training data's rating scale
as ``low + r * (high - low)``, the inverse of the simulator's own normalisation
(``rayrec.envs.feedback.FeedbackScale.normalise``; ml-100k: 1 + 4 r), and padded slots keep rating 0,
as in the logged MDP. The simulator's history length may differ from the model's N: the last N
items are used, left-padded.

Selection (no repeats within a session, the planner's category mask, top-k for slates) is
``ReferencePolicy.act``'s, shared with the simulator's reference policies. Scores of −inf (e.g.
π_LLM top-k outside its candidates) become a finite floor, so the mask and no-repeat rules still
decide among the remaining items and an action is always a catalog item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from rayrec.data import Dataset
from rayrec.envs.feedback import feedback_scale
from rayrec.envs.policies import ReferencePolicy
from rayrec.errors import ConfigError

StateScorer = Callable[[np.ndarray], np.ndarray]  # (B, 2N) states -> (B, n_items) scores


def rating_range(train: Dataset) -> tuple[float, float]:
    """[low, high] of ``train``'s feedback scale, the range the simulator normalised rewards over."""
    scale = feedback_scale(train)
    return float(scale.low), float(scale.high)


def session_states(
    obs: dict[str, np.ndarray], history_len: int, n_items: int, low: float, high: float
) -> np.ndarray:
    """(B, 2 N) float32 model states from a batched simulator observation (see the module docstring)."""
    items = np.asarray(obs["history_items"], dtype=np.int64)
    rewards = np.asarray(obs["history_rewards"], dtype=np.float32)
    b, h = items.shape
    out_items = np.full((b, history_len), n_items, dtype=np.float32)
    out_ratings = np.zeros((b, history_len), dtype=np.float32)
    take = min(h, history_len)
    it, rw = items[:, h - take :], rewards[:, h - take :]
    real = it < n_items
    out_items[:, history_len - take :] = np.where(real, it, n_items)
    out_ratings[:, history_len - take :] = np.where(real, low + rw * (high - low), 0.0)
    return np.concatenate([out_items, out_ratings], axis=1)


class TrainedPolicy(ReferencePolicy):
    """``scores`` from a trained model: state-based (``state_scorer``) or user-based (``user_scorer``)."""

    name: ClassVar[str] = "trained"

    def __init__(
        self,
        categories: np.ndarray,
        *,
        state_scorer: StateScorer | None = None,
        user_scorer: Callable[[np.ndarray], np.ndarray] | None = None,
        history_len: int = 10,
        rating_low: float = 1.0,
        rating_high: float = 5.0,
        slate_size: int = 1,
        seed: int | None = 0,
        label: str = "trained",
    ) -> None:
        super().__init__(categories, slate_size, seed)
        if (state_scorer is None) == (user_scorer is None):
            raise ConfigError("give exactly one of state_scorer (offline RL, SASRec) or user_scorer")
        if not rating_high > rating_low:
            raise ConfigError(f"rating range [{rating_low}, {rating_high}] is empty")
        self.state_scorer, self.user_scorer = state_scorer, user_scorer
        self.history_len, self.low, self.high = history_len, rating_low, rating_high
        self.label = label

    def states(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return session_states(obs, self.history_len, self.n_items, self.low, self.high)

    def scores(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        if self.state_scorer is not None:
            s = np.asarray(self.state_scorer(self.states(obs)), dtype=np.float32)
        else:
            assert self.user_scorer is not None
            s = np.asarray(self.user_scorer(np.asarray(users, dtype=np.int64)), dtype=np.float32)
        if s.shape != (len(users), self.n_items):
            raise ConfigError(
                f"{self.label}: scores of shape {s.shape}, expected ({len(users)}, {self.n_items})"
            )
        finite = np.isfinite(s)
        if not finite.all():
            floor = (s[finite].min() if finite.any() else 0.0) - 1.0
            s = np.where(finite, s, floor).astype(np.float32)
        return s


def module_state_scorer(module: Any) -> StateScorer:
    """LAAC's actor, BC, CQL: the RLModule's inference logits (``offline_recommender.inference_logits``)."""
    from rayrec.algorithms.offline_recommender import inference_logits

    return lambda states: inference_logits(module, states)


def sasrec_state_scorer(rec: Any) -> StateScorer:
    """SASRec reads items only (ratings zero) over ``max_len`` positions: re-pad the N-item state."""
    import torch

    max_len = rec.config.max_len

    @torch.no_grad()
    def score(states: np.ndarray) -> np.ndarray:
        n = states.shape[1] // 2
        items = np.full((len(states), max_len), rec._n_items, dtype=np.float32)
        take = min(n, max_len)
        items[:, max_len - take :] = states[:, n - take : n]
        x = torch.from_numpy(np.concatenate([items, np.zeros_like(items)], axis=1))
        rec.model.eval()
        return rec._logits(rec.model(x)).numpy()

    return score


def policy_for(
    rec: Any,
    train: Dataset,
    categories: np.ndarray,
    *,
    slate_size: int = 1,
    seed: int | None = 0,
    label: str = "trained",
) -> TrainedPolicy:
    """The simulator policy of a fitted study recommender: an offline RL one (has ``module``), SASRec
    (has ``model`` and ``config.max_len``) or any other ``Recommender`` scored per user."""
    low, high = rating_range(train)
    common: dict[str, Any] = {"rating_low": low, "rating_high": high, "slate_size": slate_size, "seed": seed}
    if getattr(rec, "module", None) is not None and hasattr(rec, "history_len"):
        scorer = module_state_scorer(rec.module)
        return TrainedPolicy(
            categories, state_scorer=scorer, history_len=int(rec.history_len), label=label, **common
        )
    if getattr(rec, "model", None) is not None and hasattr(getattr(rec, "config", None), "max_len"):
        scorer = sasrec_state_scorer(rec)
        return TrainedPolicy(
            categories, state_scorer=scorer, history_len=rec.config.max_len, label=label, **common
        )
    return TrainedPolicy(categories, user_scorer=rec.score, label=label, **common)
