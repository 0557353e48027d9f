"""LERLVectorEnv: the batched simulator with the high-level planner wired in, one EnvRunner's users.

The vector env already holds every user of an EnvRunner as a row of one batched core, so it is where
planning batches naturally: after each step, all rows whose plan is due (a new user, or
``replan_every`` steps since the last plan) are planned *together* in one call, and their category
masks are written into the core before the observation leaves, so the module sees the new mask in the
very observation it acts on. With ``num_env_runners = n`` there are n such callers of the one planner
deployment, each sending one batch per replan; Serve's ``@serve.batch`` fuses them.

At session end (terminated or truncated) the finished rows' summaries go to the reflection pool with a
reflection written from the same facts: ``reflection="template"`` (``planners.compact_reflection``,
~20 tokens in the planner prompt's own notation, no LLM call; the default, because on 2 CPU cores a
generated lesson costs ~300 prompt tokens plus up to ``reflection_max_tokens`` decoded ones, i.e. about a
second of the one planner replica per finished session, and ~1.5x the tokens once in the prompt) or
``"llm"`` (``generate`` on ``rayrec.llm.prompts.reflection_prompt`` through ``PlannerClient``, with the
compact template as its counted fallback). The pool is only used by the ``llm`` planner (the other planners
read no reflections). Adding to the pool is fire-and-forget; sampling is one actor call per replan.

Fresh users (step 0) of one replan share one draw of lessons (``share_fresh_lessons``, on by
default): their prompts are then identical, so the planner scores them once; see :func:`assign_lessons`.

Counters (plans, planner requests/fallbacks, planner seconds, sessions sent to the pool) accumulate in
the env and are drained by LERL's callback into the EnvRunner's metrics (``lerl/...``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from typing import Any

import numpy as np

from rayrec.algorithms.lerl.planners import PLANNERS, compact_reflection, make_planner, select_categories
from rayrec.algorithms.lerl.reflection_pool import DEFAULT_POOL_NAME, PoolSettings, get_pool
from rayrec.envs.config import SimConfig
from rayrec.envs.recsim_vector_env import RecSimVectorEnv
from rayrec.envs.registration import _response, make_env_config
from rayrec.errors import ConfigError
from rayrec.llm.prompts import CategoryStat, SessionSummary, reflection_prompt

logger = logging.getLogger(__name__)

LERL_ENV_NAME = "rayrec-lerl"
REFLECTIONS = ("template", "llm")
_instances = itertools.count()

# Every planner knob the env reads from env_config["lerl"], with its default.
ENV_DEFAULTS: dict[str, Any] = {
    "planner": "round_robin",
    "m": 3,
    "replan_every": 5,
    "n_reflections": 1,
    "plan_select": "top",
    "reflection": "template",
    "reflection_max_tokens": 24,
    "planner_app": "planner",
    "planner_timeout_s": 60.0,
    "history_top": 6,
    "share_fresh_lessons": True,
    "pool_name": DEFAULT_POOL_NAME,
    "pool": {"capacity": 1000, "eviction": "fifo", "alpha": 1.0, "seed": 0},
}


def make_lerl_env_config(dataset: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``make_env_config`` plus what the planner needs on the EnvRunners: category names and item
    popularity (the fallback prior and the round-robin order), all as plain data."""
    from rayrec.data.registry import load_dataset

    env_config = make_env_config(dataset, *args, **kwargs)
    dataset_path = kwargs.get("dataset_path", args[2] if len(args) > 2 else None)
    data = load_dataset(dataset, dataset_path, **(kwargs.get("loader_options") or {}))
    env_config["category_names"] = list(data.category_names)
    env_config["item_popularity"] = np.asarray(data.item_popularity(), dtype=np.float64)
    return env_config


def assign_lessons(fresh: np.ndarray, sampled: list[list[str]]) -> list[list[str]]:
    """Lessons per due row when the fresh users of one replan share one draw: ``sampled`` holds one
    draw per returning user (in row order) and one last draw for all fresh users.

    A fresh user's prompt holds nothing of its own but the lessons, so with a shared draw all fresh
    users of a batch send the same prompt, scored once (and cached); with a draw each, every new
    session would cost a full plan. Returning users keep their own draws.
    """
    if len(sampled) != int((~fresh).sum()) + 1:
        raise ConfigError(f"{len(sampled)} draws for {int((~fresh).sum())} returning users plus one shared")
    own = iter(sampled[:-1])
    return [sampled[-1] if f else next(own) for f in fresh]


class LERLVectorEnv(RecSimVectorEnv):
    """``num_envs`` users whose allowed categories come from a planner every ``replan_every`` steps."""

    def __init__(
        self,
        num_envs: int,
        response: Any,
        categories: np.ndarray,
        config: SimConfig | None = None,
        user_features: np.ndarray | None = None,
        *,
        lerl: dict[str, Any] | None = None,
        category_names: list[str] | None = None,
        item_popularity: np.ndarray | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(num_envs, response, categories, config, user_features)
        settings = {**ENV_DEFAULTS, **(lerl or {})}
        unknown = set(settings) - set(ENV_DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown LERL env setting(s) {sorted(unknown)}; known: {sorted(ENV_DEFAULTS)}")
        if settings["planner"] not in PLANNERS:
            raise ConfigError(f"planner must be one of {PLANNERS}, not {settings['planner']!r}")
        if settings["reflection"] not in REFLECTIONS:
            raise ConfigError(f"reflection must be one of {REFLECTIONS}, not {settings['reflection']!r}")
        if int(settings["replan_every"]) < 1:
            raise ConfigError(f"replan_every must be >= 1, not {settings['replan_every']}")
        self.settings = settings
        self.category_names = category_names or [f"category {i}" for i in range(self.core.n_categories)]
        self.planner = make_planner(
            settings["planner"],
            self.core.categories,
            int(settings["m"]),
            self.category_names,
            item_popularity,
            **(
                {
                    "app_name": settings["planner_app"],
                    "timeout_s": float(settings["planner_timeout_s"]),
                    "history_top": int(settings["history_top"]),
                }
                if settings["planner"] == "llm"
                else {}
            ),
        )
        self.uses_pool = settings["planner"] == "llm"
        self._pool: Any = None
        self.rng = np.random.default_rng(seed)
        self.plan_index = np.zeros(num_envs, dtype=np.int64)
        self.counters: Counter[str] = Counter()  # since the last drain (per-iteration metrics)
        self.totals: Counter[str] = Counter()  # since the env was built (never drained)
        self._client: Any = None

    # --- gymnasium ------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, info = super().reset(seed=seed, options=options)
        if seed is not None:
            self.rng = np.random.default_rng([seed, 1])
        self.plan_index[:] = 0
        self._plan(np.arange(self.num_envs), obs)
        return obs, info

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        resetting = self._autoreset.copy()
        obs, reward, terminated, truncated, infos = super().step(actions)
        self.plan_index[resetting] = 0
        ended = np.flatnonzero(terminated | truncated)
        if len(ended):
            self._end_sessions(ended, terminated)
        live = ~(terminated | truncated)
        due = np.flatnonzero(live & (self.core.t % int(self.settings["replan_every"]) == 0))
        self._plan(due, obs)
        self._count("env_steps", int((~resetting).sum()))
        return obs, reward, terminated, truncated, infos

    # --- planning ---------------------------------------------------------------------------------------

    def _plan(self, rows: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        """One batched plan for ``rows``; writes their masks into the core and into ``obs``."""
        if self.planner is None or not len(rows):
            return
        start = time.perf_counter()
        shown, mean = self.core.category_history()
        fresh = self.core.t[rows] == 0
        if self.settings["share_fresh_lessons"] and fresh.sum() > 1:
            lessons = assign_lessons(fresh, self._lessons(int((~fresh).sum()) + 1))
        else:
            lessons = self._lessons(len(rows))
        scores = self.planner.scores(rows, self.plan_index[rows], shown[rows], mean[rows], lessons, self.rng)
        chosen = select_categories(scores, self.planner.m, self.settings["plan_select"], self.rng)
        mask = np.zeros((len(rows), self.core.n_categories), dtype=np.int8)
        mask[:, self.planner.candidates] = chosen
        self.core.set_category_mask(mask, rows)
        obs["category_mask"][rows] = mask
        self.plan_index[rows] += 1
        self._count("plans", len(rows))
        self._count("plan_calls", 1)
        self._count("planner_ms", int((time.perf_counter() - start) * 1e3))

    def _lessons(self, n: int) -> list[list[str]]:
        k = int(self.settings["n_reflections"])
        if not self.uses_pool or k == 0:
            return [[] for _ in range(n)]
        import ray

        try:
            texts, rets = ray.get(
                self.pool().sample.remote(n, k), timeout=float(self.settings["planner_timeout_s"])
            )
        except (ray.exceptions.RayError, TimeoutError) as exc:  # lessons are optional: plan without them
            self._pool = None
            self._count("pool_errors", 1)
            logger.warning("reflection pool unavailable, planning without lessons: %s", exc)
            return [[] for _ in range(n)]
        self._count("lessons_read", sum(len(t) for t in texts))
        return texts

    def pool(self) -> Any:
        if self._pool is None:
            s = self.settings["pool"]
            self._pool = get_pool(self.settings["pool_name"], PoolSettings(**s))
        return self._pool

    # --- session end: reflections -------------------------------------------------------------------

    def _summaries(self, rows: np.ndarray, terminated: np.ndarray) -> list[SessionSummary]:
        shown, mean = self.core.category_history()
        out = []
        for r in rows:
            seen = np.flatnonzero(shown[r] > 0)
            seen = seen[np.argsort(-shown[r][seen], kind="stable")][: int(self.settings["history_top"])]
            history = tuple(
                CategoryStat(str(self.category_names[c]), int(shown[r, c]), float(mean[r, c])) for c in seen
            )
            out.append(
                SessionSummary(
                    history,
                    int(self.core.t[r]),
                    float(self.core.session_return[r]),
                    "quit" if terminated[r] else "truncated",
                )
            )
        return out

    def _end_sessions(self, rows: np.ndarray, terminated: np.ndarray) -> None:
        if not self.uses_pool:
            return
        summaries = self._summaries(rows, terminated)
        shown, mean = self.core.category_history()
        cand = self.planner.candidates
        templates = [
            compact_reflection(self.planner.prompts, s.steps, s.total_reward, shown[r][cand], mean[r][cand])
            for r, s in zip(rows, summaries)
        ]
        if self.settings["reflection"] == "llm":
            texts = self._generate([reflection_prompt(s) for s in summaries], templates)
        else:
            texts = templates
        entries = [
            (
                t,
                {"steps": s.steps, "ended_by": s.ended_by, "history": [h.__dict__ for h in s.history]},
                s.total_reward,
            )
            for t, s in zip(texts, summaries)
        ]
        import ray

        try:
            self.pool().add.remote(entries)  # fire-and-forget: the rollout never waits on the pool
            self._count("sessions_to_pool", len(entries))
        except ray.exceptions.RayError as exc:
            self._pool = None
            self._count("pool_errors", 1)
            logger.warning("reflection pool unavailable, %d sessions not stored: %s", len(entries), exc)

    def _generate(self, prompts: list[str], templates: list[str]) -> list[str]:
        """LLM reflections, each falling back to its own template (counted by the client)."""
        from rayrec.llm.planner_client import PlannerClient

        if self._client is None:
            self._client = PlannerClient(
                self.settings["planner_app"], timeout_s=float(self.settings["planner_timeout_s"])
            )
        before = self._client.stats["fallbacks"]
        # One batched call; a failed answer comes back as "" (counted by the client) and gets its template.
        out = self._client.generate(prompts, int(self.settings["reflection_max_tokens"]), fallback="")
        self._count("reflection_fallbacks", self._client.stats["fallbacks"] - before)
        self._count("reflections_generated", len(prompts))
        return [o.strip() or t for o, t in zip(out, templates)]

    def _count(self, key: str, n: int) -> None:
        self.counters[key] += n
        self.totals[key] += n

    def drain_counters(self) -> dict[str, float]:
        """Counters since the last drain (planner requests/fallbacks included), then reset."""
        out = dict(self.counters)
        if self.planner is not None:
            for key, value in self.planner.stats().items():
                out[key] = value - self.counters.get(f"_seen_{key}", 0)
                self.counters[f"_seen_{key}"] = value
        self.counters = Counter({k: v for k, v in self.counters.items() if k.startswith("_seen_")})
        return {k: float(v) for k, v in out.items() if not k.startswith("_seen_")}


def create_lerl_env(env_config: dict[str, Any]) -> LERLVectorEnv:
    """Env creator for ``tune.register_env``: RLlib's VECTOR_ENTRY_POINT mode passes ``num_envs``."""
    sim = SimConfig.from_dict(dict(env_config.get("sim", {})))
    seed = None
    if sim.seed is not None:
        worker = int(getattr(env_config, "worker_index", None) or 0)
        seed = int(np.random.SeedSequence([sim.seed, worker, next(_instances)]).generate_state(1)[0])
        sim.seed = seed
    return LERLVectorEnv(
        int(env_config.get("num_envs", 1)),
        _response(env_config),
        np.asarray(env_config["categories"], dtype=bool),
        sim,
        env_config.get("user_features"),
        lerl=dict(env_config.get("lerl", {})),
        category_names=env_config.get("category_names"),
        item_popularity=env_config.get("item_popularity"),
        seed=seed,
    )


def register() -> str:
    """Register ``rayrec-lerl`` with Tune/RLlib."""
    from ray import tune

    tune.register_env(LERL_ENV_NAME, create_lerl_env)
    return LERL_ENV_NAME
