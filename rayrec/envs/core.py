"""The batched simulator core: B users step at once in numpy.

Everything an RL env needs per user (history, quit state, category statistics) is a row of an array,
so one ``step`` costs a handful of vectorised numpy calls whatever B is. The gym env runs it with
B = 1; benchmarks, reference-policy evaluation and vectorised rollouts run it with B in the
thousands. Rows are independent sessions: when a session ends the caller starts a new user in that
row with :meth:`reset_rows` (or :meth:`reset_done`), so a batch can be a continuous stream of users
as in KuaiSim.

Per step, per row: items -> response model score (B, k) -> quit model's modulation (fatigue) ->
KuaiSim's intra-slate correlation penalty (slates only) -> optional noise / Bernoulli sampling ->
reward = slate mean -> quit model decides whether the user leaves; ``max_turn`` truncates.

``step(actions, rows=...)`` steps only some rows and leaves the others untouched: gymnasium's
NEXT_STEP autoreset (what RLlib's vector envs follow) spends one step resetting a finished row while
the rest of the batch steps on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rayrec.envs.config import SimConfig
from rayrec.envs.quit_models import make_quit_model
from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError

QUIT_REASONS = ("", "category_repeat", "temper", "fatigue", "max_turn")
_REASON_CODE = {r: i for i, r in enumerate(QUIT_REASONS)}


@dataclass
class BatchStep:
    """What one batched step returns; arrays have B rows."""

    obs: dict[str, np.ndarray]
    reward: np.ndarray  # (B,) float32, slate-mean response
    terminated: np.ndarray  # (B,) bool: the user left (quit model)
    truncated: np.ndarray  # (B,) bool: max_turn reached and the user did not leave
    quit_code: np.ndarray  # (B,) int8 index into QUIT_REASONS

    def quit_reasons(self) -> np.ndarray:
        """(B,) quit reasons as strings ("" while the session goes on)."""
        return np.asarray(QUIT_REASONS, dtype=object)[self.quit_code]


class BatchedRecSim:
    """Steps B simulated users at once.

    response: the ground-truth response model (scores in [0, 1]).
    categories: (n_items, C) bool multi-hot of the catalog.
    user_features: optional (n_users, F) float32, encoded (see ``encode_user_features``).
    """

    def __init__(
        self,
        response: ResponseModel,
        categories: np.ndarray,
        config: SimConfig | None = None,
        user_features: np.ndarray | None = None,
    ) -> None:
        self.config = config or SimConfig()
        self.response = response
        self.categories = np.asarray(categories, dtype=bool)
        if self.categories.shape[0] != response.n_items:
            raise ConfigError(
                f"the catalog has {self.categories.shape[0]} items but the response model "
                f"{response.n_items}; fit the response model on the same dataset"
            )
        self.n_users, self.n_items = response.n_users, response.n_items
        self.n_categories = self.categories.shape[1]
        self.pad_item = self.n_items  # history slots not filled yet
        if self.config.user_features and user_features is None:
            raise ConfigError("user_features=True but the dataset has no user features; turn it off")
        self.user_features = None
        if self.config.user_features:
            self.user_features = np.asarray(user_features, dtype=np.float32)
        # unit-norm category vectors: cosine similarity of two items = dot product (slate correlation)
        norm = np.linalg.norm(self.categories, axis=1, keepdims=True)
        self._cat_unit = (self.categories / np.maximum(norm, 1.0)).astype(np.float32)
        self.quit_model = make_quit_model(self.config.quit_model, self.config.quit_params)
        self.rng = np.random.default_rng(self.config.seed)
        self.batch_size = 0

    # --- sessions -----------------------------------------------------------------------------------

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, batch_size: int, users: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Start ``batch_size`` sessions (users drawn uniformly unless given) and return their obs."""
        b, h, c, k = batch_size, self.config.history_len, self.n_categories, self.config.slate_size
        self.batch_size = b
        self.users = np.zeros(b, dtype=np.int64)
        self.t = np.zeros(b, dtype=np.int64)
        self.done = np.zeros(b, dtype=bool)
        self.history_items = np.full((b, h), self.pad_item, dtype=np.int64)
        self.history_rewards = np.zeros((b, h), dtype=np.float32)
        self.category_mask = np.ones((b, c), dtype=np.int8)
        self.shown = np.zeros((b, c), dtype=np.float32)  # times each category was shown this session
        self.reward_sum = np.zeros((b, c), dtype=np.float32)  # summed item responses per category
        self.session_return = np.zeros(b, dtype=np.float64)
        self._k = k
        self.quit_model.reset(b, self.config.max_turn)
        self.reset_rows(np.arange(b), users)
        return self.observe()

    def reset_rows(self, rows: np.ndarray, users: np.ndarray | None = None) -> None:
        """Start new users in ``rows`` (their category mask goes back to all ones)."""
        rows = np.asarray(rows, dtype=np.int64)
        if users is None:
            users = self.rng.integers(0, self.n_users, size=len(rows))
        users = np.asarray(users, dtype=np.int64)
        if users.shape != rows.shape or (len(users) and (users.min() < 0 or users.max() >= self.n_users)):
            raise ConfigError(f"users must be {len(rows)} ids in [0, {self.n_users}), got {users!r}")
        self.users[rows] = users
        self.t[rows] = 0
        self.done[rows] = False
        self.history_items[rows] = self.pad_item
        self.history_rewards[rows] = 0.0
        self.category_mask[rows] = 1
        self.shown[rows] = 0.0
        self.reward_sum[rows] = 0.0
        self.session_return[rows] = 0.0
        self.quit_model.reset_rows(rows)

    def reset_done(self) -> np.ndarray:
        """Start new users in every finished row; returns those rows (KuaiSim's continuous stream)."""
        rows = np.flatnonzero(self.done)
        if len(rows):
            self.reset_rows(rows)
        return rows

    # --- the planner's side -------------------------------------------------------------------------

    def set_category_mask(self, mask: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Allowed categories per user, (B, C) or (C,) for all, set from outside (the LERL planner).

        The mask is part of the observation; the policy applies it (the env does not enforce it), so
        flat baselines and masked policies see the same simulator.
        """
        if self.batch_size == 0:
            raise ConfigError("call reset() before set_category_mask(): the mask belongs to a session")
        mask = np.asarray(mask)
        if mask.shape[-1] != self.n_categories:
            raise ConfigError(f"category mask must have {self.n_categories} columns, got shape {mask.shape}")
        if rows is None:
            self.category_mask[:] = mask
        else:
            self.category_mask[rows] = mask

    def allowed_items(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(B, n_items) bool: items with at least one allowed category (for masked or greedy policies)."""
        mask = self.category_mask if rows is None else self.category_mask[rows]
        return (mask.astype(np.float32) @ self.categories.T.astype(np.float32)) > 0

    def category_history(self) -> tuple[np.ndarray, np.ndarray]:
        """Per user and category this session: (times shown (B, C), mean response (B, C), 0 if unseen)."""
        mean = np.divide(
            self.reward_sum, self.shown, out=np.zeros_like(self.reward_sum), where=self.shown > 0
        )
        return self.shown.copy(), mean

    # --- stepping -----------------------------------------------------------------------------------

    def observe(self) -> dict[str, np.ndarray]:
        obs = {
            "history_items": self.history_items.copy(),
            "history_rewards": self.history_rewards.copy(),
            "step": self.t[:, None].copy(),
            "category_mask": self.category_mask.copy(),
        }
        if self.config.category_history_obs:
            shown, mean = self.category_history()
            obs["category_shown"] = shown
            obs["category_reward"] = mean
        if self.user_features is not None:
            obs["user_features"] = self.user_features[self.users]
        return obs

    def step(self, actions: np.ndarray, rows: np.ndarray | None = None) -> BatchStep:
        """One step for every row, or only for ``rows``; ``actions`` is (B,) item ids, or (B, k) slates.

        Rows left out of ``rows`` keep their state, their actions are ignored, and they report reward
        0, not terminated, not truncated: the shape gymnasium's NEXT_STEP autoreset wants for a row
        that spends this step being reset.
        """
        if self.batch_size == 0:
            raise ConfigError("call reset(batch_size) before step()")
        idx = slice(None) if rows is None else np.asarray(rows, dtype=np.int64)  # the R stepping rows
        if self.done[idx].any():
            raise ConfigError(
                f"{int(self.done[idx].sum())} sessions have ended; start new users with reset_done() or "
                "reset_rows() before stepping them again"
            )
        items = np.asarray(actions, dtype=np.int64).reshape(self.batch_size, -1)[idx]  # (R, k)
        if items.shape[1] != self._k:
            raise ConfigError(f"expected slates of {self._k} items per user, got shape {np.shape(actions)}")
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            raise ConfigError(f"item ids must lie in [0, {self.n_items}); got {items.min()}..{items.max()}")
        t = self.t[idx]  # (R,)
        item_cats = self.categories[items]  # (R, k, C)
        response = self.response.score(self.users[idx], items).astype(np.float32, copy=False)  # (R, k)
        response = self.quit_model.modulate(item_cats, response, rows)
        if self._k > 1 and self.config.item_correlation > 0:
            response = response - self.config.item_correlation * self._slate_correlation(items)
        if self.config.reward_noise > 0:
            response = response + self.rng.normal(0.0, self.config.reward_noise, response.shape)
        response = np.clip(response, 0.0, 1.0).astype(np.float32)
        if self.config.response_sampling == "bernoulli":
            response = (self.rng.random(response.shape) < response).astype(np.float32)
        reward = response.mean(axis=1)  # (R,)

        leave = self.quit_model.leave(t, item_cats, reward, rows)
        trunc = ~leave & (t >= self.config.max_turn - 1)
        code = np.where(leave, _REASON_CODE[self.quit_model.reason], 0)
        code = np.where(trunc, _REASON_CODE["max_turn"], code).astype(np.int8)

        self._record(idx, items, item_cats, response, reward)
        self.done[idx] = leave | trunc
        if rows is not None:  # rows that did not step: reward 0, not done, quit code 0
            reward, leave, trunc, code = (self._scatter(idx, x) for x in (reward, leave, trunc, code))
        return BatchStep(self.observe(), reward, leave, trunc, code)

    def _scatter(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(B,) array holding ``values`` at ``rows`` and zeros (False) elsewhere."""
        out = np.zeros(self.batch_size, dtype=values.dtype)
        out[rows] = values
        return out

    def _record(
        self,
        idx: slice | np.ndarray,
        items: np.ndarray,
        item_cats: np.ndarray,
        response: np.ndarray,
        reward: np.ndarray,
    ) -> None:
        k, h = self._k, self.config.history_len
        if k >= h:
            self.history_items[idx] = items[:, -h:]
            self.history_rewards[idx] = response[:, -h:]
        else:
            self.history_items[idx, :-k] = self.history_items[idx, k:]
            self.history_items[idx, -k:] = items
            self.history_rewards[idx, :-k] = self.history_rewards[idx, k:]
            self.history_rewards[idx, -k:] = response
        self.shown[idx] += item_cats.sum(axis=1)
        self.reward_sum[idx] += np.einsum("bkc,bk->bc", item_cats.astype(np.float32), response)
        self.session_return[idx] += reward
        self.t[idx] += 1

    def _slate_correlation(self, items: np.ndarray) -> np.ndarray:
        """(B, k): each item's mean category cosine similarity to the other items of its slate."""
        v = self._cat_unit[items]  # (B, k, C)
        sim = np.einsum("bkc,bjc->bkj", v, v)  # (B, k, k)
        k = items.shape[1]
        return (sim.sum(axis=2) - np.einsum("bkk->bk", sim)) / (k - 1)


def encode_user_features(features: object) -> np.ndarray:
    """Dataset user features (a DataFrame) as (n_users, F) float32: numeric columns standardised,
    the rest one-hot, so any dataset's user table can enter an observation."""
    import pandas as pd

    df = pd.DataFrame(features)
    parts = []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s):
            x = s.to_numpy(np.float64)
            std = x.std()
            parts.append(((x - x.mean()) / (std if std > 0 else 1.0))[:, None])
        else:
            parts.append(pd.get_dummies(s.astype(str)).to_numpy(np.float64))
    if not parts:
        return np.zeros((len(df), 0), dtype=np.float32)
    return np.concatenate(parts, axis=1).astype(np.float32)
