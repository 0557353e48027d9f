"""Reference policies for the simulator: random, popularity, greedy on the response model, category
round-robin. They bracket what an RL policy should reach: random and popularity are the floors,
greedy is the myopic optimum (best immediate response, blind to quitting), round-robin is the
"diversity by hand" answer to category-repetition quitting.

All act on the batched observation (dict of arrays, leading batch dim B) and return (B,) item ids or
(B, k) slates. Every policy scores all items, then the shared selection step removes items already
shown this session (DORL's "NX_0" evaluation mode) and items outside the planner's category mask, and
takes the top k. Because the observation only holds the last H items, a policy remembers what it
showed in each row itself, and forgets a row when its ``step`` is back to 0 (a new user).

Popularity and random score items with ``rayrec.popularity`` (``popularity_scores``,
``random_scores``), the same functions the offline ``PopularityRecommender`` and ``RandomRecommender``
use, so each floor has one implementation; what the policies add is the session-level selection above.

Greedy needs to know who the user is; it gets the users' ids from the caller (the rollout reads them
from the simulator), which makes it a privileged oracle baseline rather than a deployable policy.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError
from rayrec.popularity import popularity_scores, random_scores

_NEG = np.float32(-np.inf)


class ReferencePolicy:
    """Base: per-row memory of shown items and the mask-aware top-k selection."""

    name: ClassVar[str] = ""

    def __init__(self, categories: np.ndarray, slate_size: int = 1, seed: int | None = 0) -> None:
        self.categories = np.asarray(categories, dtype=bool)  # (n_items, C)
        self.n_items, self.n_categories = self.categories.shape
        if not 1 <= slate_size <= self.n_items:
            raise ConfigError(f"slate_size must lie in [1, {self.n_items}], got {slate_size}")
        self.slate_size = slate_size
        self.rng = np.random.default_rng(seed)
        self._cats_t = self.categories.T.astype(np.float32)  # (C, n_items)
        self._shown = np.zeros((0, self.n_items), dtype=bool)  # (B, n_items)

    def _check_popularity(self, popularity: np.ndarray) -> np.ndarray:
        pop = np.asarray(popularity, dtype=np.float64)
        if pop.shape != (self.n_items,):
            raise ConfigError(f"popularity must have one count per item ({self.n_items}), got {pop.shape}")
        return pop

    def scores(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        """(B, n_items) preference of each row over the catalog; higher is shown first."""
        raise NotImplementedError

    def act(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        """Actions for a batch: (B,) item ids, or (B, k) slates when ``slate_size`` > 1."""
        b = len(users)
        if self._shown.shape[0] != b:
            self._shown = np.zeros((b, self.n_items), dtype=bool)
        new_session = obs["step"][:, 0] == 0
        self._shown[new_session] = False
        self.start_rows(np.flatnonzero(new_session))
        raw = self.scores(obs, users)
        s = raw.astype(np.float32, copy=True)
        s[self._shown] = _NEG
        mask = obs["category_mask"]
        restricted = ~mask.all(axis=1)
        if restricted.any():
            rows = np.flatnonzero(restricted)
            outside = (mask[rows].astype(np.float32) @ self._cats_t) == 0  # (R, n_items)
            # A row whose allowed categories are exhausted falls back to any unseen item, since an
            # action must be given and the mask is the planner's advice, not an env rule.
            exhausted = (outside | self._shown[rows]).all(axis=1)
            outside[exhausted] = False
            s[rows] = np.where(outside, _NEG, s[rows])
        # Every item shown already (sessions longer than the catalog): start over for that row.
        spent = np.isneginf(s).sum(axis=1) > self.n_items - self.slate_size
        if spent.any():
            self._shown[spent] = False
            s[spent] = raw[spent]
        if self.slate_size == 1:
            actions = s.argmax(axis=1)  # (B,)
            self._shown[np.arange(b), actions] = True
            return actions
        k = self.slate_size
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]  # (B, k), unordered
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1)
        actions = np.take_along_axis(top, order, axis=1)  # (B, k), best first
        self._shown[np.arange(b)[:, None], actions] = True
        return actions

    def start_rows(self, rows: np.ndarray) -> None:
        """Hook for policies with per-session state beyond the shown items."""


class RandomPolicy(ReferencePolicy):
    """Uniform over unseen (allowed) items."""

    name: ClassVar[str] = "random"

    def scores(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        return random_scores(self.rng, len(users), self.n_items)


class PopularityPolicy(ReferencePolicy):
    """Most-interacted training items first (ties broken by a fixed random order)."""

    name: ClassVar[str] = "popularity"

    def __init__(
        self, categories: np.ndarray, popularity: np.ndarray, slate_size: int = 1, seed: int | None = 0
    ) -> None:
        super().__init__(categories, slate_size, seed)
        # rank-based scores keep float32 exact and ties in a random order fixed by the seed
        self._score = popularity_scores(self._check_popularity(popularity), self.rng)

    def scores(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._score, (len(users), self.n_items))


class GreedyPolicy(ReferencePolicy):
    """Highest expected response under the response model, per user (myopic oracle)."""

    name: ClassVar[str] = "greedy"

    def __init__(
        self, categories: np.ndarray, response: ResponseModel, slate_size: int = 1, seed: int | None = 0
    ) -> None:
        super().__init__(categories, slate_size, seed)
        if response.n_items != self.n_items:
            raise ConfigError(
                f"the response model scores {response.n_items} items but the catalog has {self.n_items}"
            )
        self.response = response

    def scores(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        return self.response.score_all(users)


class RoundRobinPolicy(ReferencePolicy):
    """Cycle through the (allowed) categories, most popular category first, showing an unseen item of
    the current category: items with the fewest categories first (an item's other categories would
    repeat too), then the most popular. With slates the whole slate comes from that category.
    """

    name: ClassVar[str] = "round_robin"

    def __init__(
        self, categories: np.ndarray, popularity: np.ndarray, slate_size: int = 1, seed: int | None = 0
    ) -> None:
        super().__init__(categories, slate_size, seed)
        pop = self._check_popularity(popularity)
        self._cat_order = np.argsort(-(pop @ self.categories), kind="stable")  # (C,) popular first
        # Within the current category (+2), single-category items first (+1/n_categories, since
        # an item's other genres repeat categories too), then by popularity rank (< 0.01).
        n_cats = np.maximum(self.categories.sum(axis=1), 1)
        rank = np.argsort(np.argsort(pop, kind="stable"), kind="stable") / self.n_items
        self._base = (1.0 / n_cats + 0.01 * rank).astype(np.float32)
        self._cursor = np.zeros(0, dtype=np.int64)  # (B,) position in _cat_order

    def start_rows(self, rows: np.ndarray) -> None:
        self._cursor[rows] = 0

    def act(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        if len(self._cursor) != len(users):
            self._cursor = np.zeros(len(users), dtype=np.int64)
        return super().act(obs, users)

    def scores(self, obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        b, c = len(users), self.n_categories
        mask = obs["category_mask"].astype(bool)  # (B, C)
        # next allowed category at or after the cursor, in popularity order
        ordered_mask = mask[:, self._cat_order]  # (B, C)
        offsets = np.arange(c)[None, :]
        candidates = (self._cursor[:, None] + offsets) % c  # (B, C) positions to try, in turn
        ok = np.take_along_axis(ordered_mask, candidates, axis=1)
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), 0)
        pos = candidates[np.arange(b), first]  # (B,)
        self._cursor = (pos + 1) % c
        current = self._cat_order[pos]  # (B,) category id
        return self._base[None, :] + 2.0 * self.categories[:, current].T  # (B, n_items)


def make_policy(
    name: str,
    categories: np.ndarray,
    *,
    popularity: np.ndarray | None = None,
    response: ResponseModel | None = None,
    slate_size: int = 1,
    seed: int | None = 0,
) -> ReferencePolicy:
    """A reference policy by name (``random``, ``popularity``, ``greedy``, ``round_robin``)."""
    if name == "random":
        return RandomPolicy(categories, slate_size, seed)
    if name in ("popularity", "round_robin"):
        if popularity is None:
            raise ConfigError(f"the {name} policy needs item popularity (training interaction counts)")
        cls = PopularityPolicy if name == "popularity" else RoundRobinPolicy
        return cls(categories, popularity, slate_size, seed)
    if name == "greedy":
        if response is None:
            raise ConfigError("the greedy policy needs the response model")
        return GreedyPolicy(categories, response, slate_size, seed)
    raise ConfigError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")


POLICIES = ("random", "popularity", "greedy", "round_robin")
