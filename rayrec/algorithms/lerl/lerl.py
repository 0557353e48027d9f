"""LERL on RLlib's new API stack: PPO over items inside the categories an LLM planner picks.

``LERLConfig`` is a ``PPOConfig`` with LERL's knobs; ``LERL`` is PPO plus the cluster pieces it needs:
the shared reflection pool (created before any EnvRunner, so all of them find the same named actor)
and, with ``planner="llm"``, a running planner app (a ``ConfigError`` at build time says how to start
it when it is missing: ``algorithms`` sit below ``serve``, so deploying is the caller's job, as
``rayrec train lerl`` does). Planning happens
in the env (``planner_env.LERLVectorEnv``), batched over each EnvRunner's users; the module
(``lerl_rl_module.LERLTorchRLModule``) applies the plan as a logit bias.

Every bad value is a ``ConfigError`` when it is set (``training(...)``) or, for what depends on the
env (m against the number of categories, the slate size), when the algorithm is built, before any
worker starts.

Metrics: the EnvRunners report ``lerl/plans``, ``lerl/planner_requests``, ``lerl/planner_fallbacks``,
``lerl/planner_ms``, ``lerl/sessions_to_pool``… (sums per iteration, under ``env_runners``); the
algorithm adds ``lerl/pool_size`` and ``lerl/mean_sampled_return`` from the pool actor.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rayrec.algorithms.lerl.lerl_rl_module import ENCODERS, MASKS, LERLTorchRLModule
from rayrec.algorithms.lerl.planner_env import ENV_DEFAULTS, REFLECTIONS, register
from rayrec.algorithms.lerl.planners import PLAN_SELECT, PLANNERS
from rayrec.algorithms.lerl.reflection_pool import EVICTIONS, PoolSettings, get_pool
from rayrec.errors import ConfigError

logger = logging.getLogger(__name__)

ITEM_INITS = ("random", "mf")
_MF_CACHE: dict[tuple, np.ndarray] = {}


def mf_item_embeddings(dataset: str, dim: int, seed: int = 0, **fit: Any) -> np.ndarray:
    """(n_items, dim) item factors of an MF fitted on the logged *train* split (leave-last-out; the
    split's valid part stops it early) with a seed of its own: a warm start learned from the log, never
    the simulator's response model. ``fit`` overrides ``FitConfig`` fields (e.g. ``max_epochs``)."""
    key = (dataset, dim, seed, tuple(sorted(fit.items())))
    if key not in _MF_CACHE:
        from rayrec.data.registry import load_dataset
        from rayrec.data.splits import leave_last_out
        from rayrec.envs.fitting import fit_response_model

        split = leave_last_out(load_dataset(dataset))
        model, _ = fit_response_model(
            split.train, split.valid, "mf", **{"dim": dim, "seed": seed + 1000, **fit}
        )
        _MF_CACHE[key] = np.asarray(model.item_factors, dtype=np.float32)
    return _MF_CACHE[key]


class LERLCallbacks(RLlibCallback):
    """Moves each env's planner counters into the EnvRunner's metrics after every ``sample()``."""

    def on_sample_end(self, *, env_runner: Any = None, metrics_logger: Any = None, **kwargs: Any) -> None:
        env = getattr(getattr(env_runner, "env", None), "unwrapped", None)
        if env is None or metrics_logger is None or not hasattr(env, "drain_counters"):
            return
        for key, value in env.drain_counters().items():
            metrics_logger.log_value(("lerl", key), value, reduce="sum")


class LERLConfig(PPOConfig):
    """PPO's config plus LERL's: planner, plan size and cadence, reflections, mask, module."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or LERL)
        self.planner = "llm"
        self.replan_every = 5
        self.m = 3
        self.n_reflections = 1  # N_s
        self.alpha = 1.0
        self.plan_select = "top"
        self.mask = "soft"
        self.kappa = 5.0
        self.encoder = "transformer"
        self.slate_size = None  # None: the simulator's (SimConfig.slate_size)
        self.reflection = "template"
        self.reflection_max_tokens = 24
        self.item_init = "random"
        self.embed_dim = 32
        self.hidden_dim = 128
        self.planner_app = "planner"
        self.planner_timeout_s = 60.0  # PlannerClient.DEFAULT_TIMEOUT_S: p95 under load on 2 cores
        self.history_top = 6
        self.share_fresh_lessons = True
        self.pool_name = ENV_DEFAULTS["pool_name"]
        self.pool_capacity = 1000
        self.pool_eviction = "fifo"
        self.pool_seed = 0
        # PPO settings scaled to short sessions (as flat_ppo_config).
        self.gamma = 0.9
        self.lr = 3e-4
        self.train_batch_size_per_learner = 1000
        self.minibatch_size = 250
        self.num_epochs = 4
        self.gym_env_vectorize_mode = gym.VectorizeMode.VECTOR_ENTRY_POINT
        self.callbacks_class = LERLCallbacks

    def training(
        self,
        *,
        planner: str = NotProvided,
        replan_every: int = NotProvided,
        m: int = NotProvided,
        n_reflections: int = NotProvided,
        alpha: float = NotProvided,
        plan_select: str = NotProvided,
        mask: str = NotProvided,
        kappa: float = NotProvided,
        encoder: str = NotProvided,
        slate_size: int | None = NotProvided,
        reflection: str = NotProvided,
        reflection_max_tokens: int = NotProvided,
        item_init: str = NotProvided,
        embed_dim: int = NotProvided,
        hidden_dim: int = NotProvided,
        planner_app: str = NotProvided,
        planner_timeout_s: float = NotProvided,
        history_top: int = NotProvided,
        share_fresh_lessons: bool = NotProvided,
        pool_name: str = NotProvided,
        pool_capacity: int = NotProvided,
        pool_eviction: str = NotProvided,
        pool_seed: int | None = NotProvided,
        **kwargs: Any,
    ) -> LERLConfig:
        """PPO's ``training`` plus LERL's settings; each is checked here, at once."""
        super().training(**kwargs)
        given = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        for key, value in given.items():
            if value is not NotProvided:
                setattr(self, key, value)
        self.check_lerl()
        return self

    def environment(self, env: Any = NotProvided, **kwargs: Any) -> LERLConfig:
        super().environment(env, **kwargs)
        self.check_lerl()
        return self

    # --- validation ---------------------------------------------------------------------------------

    def _n_categories(self) -> int | None:
        cats = (self.env_config or {}).get("categories")
        return None if cats is None else int(np.asarray(cats).shape[1])

    def check_lerl(self) -> None:
        """Every LERL setting, with a message that names what to change."""

        def one_of(name: str, value: Any, allowed: tuple) -> None:
            if value not in allowed:
                raise ConfigError(f"LERL {name} must be one of {allowed}, not {value!r}")

        one_of("planner", self.planner, PLANNERS)
        one_of("mask", self.mask, MASKS)
        one_of("encoder", self.encoder, ENCODERS)
        one_of("reflection", self.reflection, REFLECTIONS)
        one_of("plan_select", self.plan_select, PLAN_SELECT)
        one_of("item_init", self.item_init, ITEM_INITS)
        one_of("pool_eviction", self.pool_eviction, EVICTIONS)
        if not (isinstance(self.kappa, (int, float)) and math.isfinite(self.kappa) and self.kappa >= 0):
            raise ConfigError(
                f"LERL kappa (the soft mask's penalty) must be a finite number >= 0, not {self.kappa}"
            )
        if self.slate_size is not None and (
            not isinstance(self.slate_size, (int, np.integer)) or self.slate_size < 1
        ):
            raise ConfigError(
                f"LERL slate_size must be an integer >= 1 (or None: the simulator's), not {self.slate_size!r}"
            )
        for name in (
            "replan_every",
            "m",
            "embed_dim",
            "hidden_dim",
            "pool_capacity",
            "history_top",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"LERL {name} must be an integer >= 1, not {value!r}")
        if not isinstance(self.n_reflections, (int, np.integer)) or self.n_reflections < 0:
            raise ConfigError(f"LERL n_reflections (N_s) must be an integer >= 0, not {self.n_reflections!r}")
        if not math.isfinite(self.alpha):
            raise ConfigError(f"LERL alpha must be a finite number, not {self.alpha}")
        if self.planner_timeout_s <= 0:
            raise ConfigError(f"LERL planner_timeout_s must be > 0, not {self.planner_timeout_s}")
        n_cat = self._n_categories()
        if n_cat is not None and self.m > n_cat:
            raise ConfigError(
                f"LERL m = {self.m} categories per plan, but the env has only {n_cat} categories; "
                f"set m <= {n_cat}"
            )
        sim_slate = (self.env_config or {}).get("sim", {}).get("slate_size")
        if sim_slate is not None and self.slate_size is not None and sim_slate != self.slate_size:
            raise ConfigError(
                f"LERL slate_size = {self.slate_size} but the simulator's is {sim_slate}; set both the same "
                "(SimConfig(slate_size=...) and .training(slate_size=...))"
            )

    def validate(self) -> None:
        self.check_lerl()
        if not isinstance(self.env_config, dict) or "categories" not in self.env_config:
            raise ConfigError(
                "LERL needs the simulator in its env_config: "
                ".environment(env_config=make_lerl_env_config('ml-100k', ...))"
            )
        if self.planner == "llm" and "category_names" not in self.env_config:
            raise ConfigError(
                "the llm planner needs category names: build the env_config with make_lerl_env_config"
            )
        if gym.VectorizeMode(self.gym_env_vectorize_mode) is not gym.VectorizeMode.VECTOR_ENTRY_POINT:
            raise ConfigError(
                "LERL plans for all users of an EnvRunner at once, so it needs "
                "env_runners(gym_env_vectorize_mode='vector_entry_point')"
            )
        self.env = register()
        self.env_config = {**self.env_config, "lerl": self.env_settings()}
        super().validate()

    def env_settings(self) -> dict[str, Any]:
        """What LERLVectorEnv reads from ``env_config["lerl"]``."""
        return {
            "planner": self.planner,
            "m": int(self.m),
            "replan_every": int(self.replan_every),
            "n_reflections": int(self.n_reflections),
            "plan_select": self.plan_select,
            "reflection": self.reflection,
            "reflection_max_tokens": int(self.reflection_max_tokens),
            "planner_app": self.planner_app,
            "planner_timeout_s": float(self.planner_timeout_s),
            "history_top": int(self.history_top),
            "share_fresh_lessons": bool(self.share_fresh_lessons),
            "pool_name": self.pool_name,
            "pool": self.pool_settings().__dict__,
        }

    def pool_settings(self) -> PoolSettings:
        return PoolSettings(self.pool_capacity, self.pool_eviction, float(self.alpha), self.pool_seed)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        env_config = self.env_config or {}
        sim = env_config.get("sim", {})
        item_init = None
        if self.item_init == "mf":
            # seeded by the run's seed (debugging(seed=...)); the fit itself adds its own offset
            item_init = mf_item_embeddings(env_config["dataset"], int(self.embed_dim), int(self.seed or 0))
        return RLModuleSpec(
            module_class=LERLTorchRLModule,
            model_config={
                "item_categories": np.asarray(env_config["categories"], dtype=np.int8),
                "history_len": int(sim.get("history_len", 10)),
                "max_turn": int(sim.get("max_turn", 30)),
                "encoder": self.encoder,
                "embed_dim": int(self.embed_dim),
                "hidden_dim": int(self.hidden_dim),
                "mask": self.mask,
                "kappa": float(self.kappa),
                "slate_size": int(self.slate_size or sim.get("slate_size", 1)),
                "item_init": item_init,
            },
        )


class LERL(PPO):
    """PPO with the shared reflection pool and the planner app in place before sampling starts."""

    @classmethod
    def get_default_config(cls) -> LERLConfig:
        return LERLConfig()

    def setup(self, config: LERLConfig) -> None:
        if config.planner == "llm":
            self._pool = get_pool(config.pool_name, config.pool_settings())
            ensure_planner(config.planner_app)
        else:
            self._pool = None
        super().setup(config)

    def training_step(self) -> None:
        super().training_step()
        if self._pool is None:
            return
        import ray

        try:
            stats = ray.get(self._pool.stats.remote(), timeout=10)
        except (ray.exceptions.RayError, TimeoutError) as exc:  # a metric, never a failed iteration
            logger.warning("could not read the reflection pool's stats: %s", exc)
            return
        for key in ("pool_size", "mean_sampled_return", "mean_pool_return"):
            self.metrics.log_value(("lerl", key), stats[key], window=1)


def ensure_planner(app_name: str) -> None:
    """The planner app must run before LERL samples; if it does not, say how to start it."""
    from ray import serve

    try:
        running = app_name in serve.status().applications
    except Exception:  # no Serve instance yet
        running = False
    if not running:
        raise ConfigError(
            f"planner app {app_name!r} is not running: start it with `rayrec planner up --name {app_name}` "
            "(`rayrec train lerl` deploys it for you), or use planner='round_robin'/'random'/'none'"
        )
