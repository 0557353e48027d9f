"""One online run, end to end: simulator → ``Algorithm.train()`` up to an environment-step budget, with
model selection on validation sessions → long-term metrics of the selected policy on test sessions →
a run directory. Library code: ``rayrec train lerl`` and the study (``study.py``) only call it.

Methods (``METHODS``): trained ones (``TRAINED_METHODS``) are LERL with each planner (``lerl`` = the
LLM planner, ``lerl_round_robin``, ``lerl_random``), ``flat_ppo`` (the *same* LERL module with planner
``none``) and ``dqn`` (RLlib's DQN, ``baselines.dqn``); reference policies (``REFERENCE_METHODS``) need
no training: ``random``, ``popularity``, ``greedy`` (the response-model oracle), ``round_robin`` and
``llm_only`` (the LLM planner's categories with greedy items inside them).

Sessions and selection: training users come from the run's seed (each EnvRunner's stream derived from
it); validation sessions from ``VALID_SEED``, test sessions from ``TEST_SEED``: fixed streams, so every
method and every seed of a study meets the same test users, and neither stream is ever used for
training. Every ``budget / eval_points`` env steps (and at the end) the current policy is rolled on
the validation sessions; the one with the best validation R_tra is checkpointed and only that one is
rolled on the test sessions. Test numbers never influence anything.

Evaluation (:func:`evaluate_policy_longterm`) uses the reference policies' rollout machinery
(``rayrec.envs.rollout.run_sessions``: exactly n sessions started and each run to its end) on a
``LERLVectorEnv``'s core: before each step the rows whose plan is due are planned by the env's own
planner (the same code path as in training, so the LLM planner is asked through the planner app), the
mask goes into the observation, and the policy acts: a trained module greedily (argmax; top-k for
slates), or a reference policy, which honours the mask. Evaluation sessions do not feed the reflection
pool.

A run directory holds ``config.json``, ``versions.json``, ``metrics.json`` (test and validation
metrics with 95 % intervals over sessions, env steps, seconds, steps/s), ``history.json`` (per
iteration: env steps, mean training return and length, RLlib's timers, the planner counters),
``checkpoint/`` (the selected algorithm) and ``curve.png`` (return vs env steps).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.algorithms.lerl.planner_env import ENV_DEFAULTS, LERLVectorEnv, make_lerl_env_config
from rayrec.algorithms.lerl.planners import PLANNERS
from rayrec.envs.config import SimConfig
from rayrec.envs.policies import GreedyPolicy, make_policy
from rayrec.envs.quit_models import QUIT_MODELS
from rayrec.envs.registration import _response
from rayrec.envs.rollout import Sessions, run_sessions
from rayrec.errors import ConfigError
from rayrec.eval import dominating_categories
from rayrec.rundir import RunDir

logger = logging.getLogger(__name__)

# method -> LERL planner (None: not a LERL run)
TRAINED_METHODS: dict[str, str | None] = {
    "lerl": "llm",
    "lerl_round_robin": "round_robin",
    "lerl_random": "random",
    "flat_ppo": "none",
    "dqn": None,
}
REFERENCE_METHODS = ("random", "popularity", "greedy", "round_robin", "llm_only")
METHODS = (*TRAINED_METHODS, *REFERENCE_METHODS)
LLM_METHODS = ("lerl", "llm_only")  # need the planner app

VALID_SEED = 1_000_003  # validation sessions' simulator seed (never a training seed)
TEST_SEED = 2_000_003  # test sessions' simulator seed

# Env-step budget per trained run, set by the slowest method, LERL with the LLM planner. Measured on the
# shared 2-core machine (load average 20-35 from other jobs; see bench/lerl.py) in the study's own
# setting (train_online: no remote EnvRunner, 16 users, PPO batch 256, N_s = 1, replan_every = 5):
# LERL(llm) 5.8 env steps/s, its evaluation ~0.1 s per session; without the LLM (flat PPO, the
# round-robin and random planners) 57-76 steps/s and DQN 34 even at load 60-96. So 5,000 steps are
# ~15 min of LERL(llm) per seed (20 min at 4.2 steps/s), and the default study (3 seeds on
# category_window, 1 on fatigue and temper) ~5 × 20 min ≈ 1.7-2 h.
DEFAULT_BUDGET = 5_000
QUICK = {
    "budget": 400,
    "eval_points": 1,
    "valid_sessions": 16,
    "test_sessions": 32,
    "num_envs_per_env_runner": 8,
    "training": {"train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 1},
}

Policy = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]
Report = dict[str, tuple[float, float]]


@dataclass
class OnlineRunResult:
    """What one trained run produced."""

    method: str
    run: RunDir
    test: Report
    valid: Report
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # env_steps, valid R_tra, Len
    best_env_steps: int = 0
    env_steps: int = 0
    seconds: float = 0.0

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / self.seconds if self.seconds else float("nan")


# --- checks --------------------------------------------------------------------------------------------


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return method


def check_quit_model(name: str) -> str:
    if name not in QUIT_MODELS:
        raise ConfigError(f"unknown quit model {name!r}; known: {', '.join(QUIT_MODELS)}")
    return name


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, not {value!r}")


def lerl_config(
    env_config: dict[str, Any],
    planner: str,
    *,
    seed: int = 0,
    training: Mapping[str, Any] | None = None,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 16,
    planner_app: str = "planner",
    pool_name: str | None = None,
) -> Any:
    """The ``LERLConfig`` of one run; every LERL setting is checked here (``ConfigError``), before Ray."""
    from rayrec.algorithms.lerl.lerl import LERLConfig

    if planner not in PLANNERS:
        raise ConfigError(f"LERL planner must be one of {PLANNERS}, not {planner!r}")
    knobs = {"planner": planner, "planner_app": planner_app, **dict(training or {})}
    if pool_name is not None:
        knobs["pool_name"] = pool_name
    return (
        LERLConfig()
        .environment(env_config=env_config)
        .training(**knobs)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner)
        .debugging(seed=seed)
    )


def check_training(
    planner: str, training: Mapping[str, Any] | None, categories: np.ndarray | None = None
) -> None:
    """LERL's settings checked without Ray or a simulator (``ConfigError`` naming what to change): the
    planner name, κ, m, ... and, given the catalog's (n_items, C) ``categories``, m against C."""
    from rayrec.algorithms.lerl.lerl import LERLConfig

    config = LERLConfig()
    if categories is not None:
        config.environment(env_config={"categories": np.asarray(categories, dtype=bool), "sim": {}})
    config.training(planner=planner, **dict(training or {}))


def sim_config(
    quit_model: str = "category_window",
    quit_params: Mapping[str, Any] | None = None,
    seed: int = 0,
    **sim: Any,
) -> SimConfig:
    check_quit_model(quit_model)
    return SimConfig(quit_model=quit_model, quit_params=dict(quit_params or {}), seed=seed, **sim)


# --- evaluation ----------------------------------------------------------------------------------------


def module_policy(module: Any, observation_space: Any = None) -> Policy:
    """A trained RLModule as ``act(obs, users)``: greedy (argmax of the inference logits; top-k for
    slates; the module's own ``actions`` where it returns them, as DQN does). ``observation_space``:
    the env's one-user Dict space, when the module was trained behind ``FlattenObservations``."""
    import torch
    from ray.rllib.core.columns import Columns

    flatten = None
    if observation_space is not None:
        from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
        from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

        struct = get_base_struct_from_space(observation_space)

        def flatten(obs: dict[str, np.ndarray]) -> torch.Tensor:
            return torch.as_tensor(flatten_inputs_to_1d_tensor(obs, struct, batch_axis=True))

    slate = int(getattr(module, "slate_size", 1) or 1)

    def act(obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        if flatten is not None:
            batch = flatten(obs)
        else:
            batch = {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: batch})
        if Columns.ACTIONS in out:
            return np.asarray(out[Columns.ACTIONS])
        logits = out[Columns.ACTION_DIST_INPUTS]
        if slate > 1:
            return torch.topk(logits, slate, dim=-1).indices.numpy()
        return logits.argmax(dim=-1).numpy()

    return act


def evaluation_env(
    env_config: dict[str, Any],
    lerl: Mapping[str, Any] | None,
    seed: int,
    batch_size: int,
) -> LERLVectorEnv:
    """A ``LERLVectorEnv`` of ``batch_size`` rows whose core and planner draw from ``seed`` alone (the
    env creator would mix in an instance counter, and every method must meet the same users)."""
    sim = SimConfig.from_dict({**dict(env_config.get("sim", {})), "seed": int(seed)})
    settings = {**ENV_DEFAULTS, "planner": "none", **dict(lerl or {})}
    return LERLVectorEnv(
        batch_size,
        _response(env_config),
        np.asarray(env_config["categories"], dtype=bool),
        sim,
        env_config.get("user_features"),
        lerl=settings,
        category_names=env_config.get("category_names"),
        item_popularity=env_config.get("item_popularity"),
        seed=int(seed),
    )


def planned(env: LERLVectorEnv, act: Policy) -> Policy:
    """``act`` behind the env's planner: rows at a plan boundary (step % replan_every == 0) get a new
    plan, written into the core and into ``obs``, before the policy acts on it."""
    every = int(env.settings["replan_every"])

    def step(obs: dict[str, np.ndarray], users: np.ndarray) -> np.ndarray:
        t = np.asarray(obs["step"])[:, 0]
        env.plan_index[t == 0] = 0
        env._plan(np.flatnonzero(t % every == 0), obs)  # noqa: SLF001 (same package: the training path)
        return act(obs, users)

    return step


def dominating_from_popularity(popularity: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """DORL's dominating categories from per-item interaction counts (what ``dominating_categories``
    computes from the interaction log's item ids)."""
    counts = np.asarray(popularity, dtype=np.int64)
    return dominating_categories(np.repeat(np.arange(len(counts)), counts), categories)


def evaluate_policy_longterm(
    policy: str | Policy | Any,
    env_config: dict[str, Any],
    *,
    lerl: Mapping[str, Any] | None = None,
    sessions: int = 300,
    seed: int = TEST_SEED,
    batch_size: int = 64,
    observation_space: Any = None,
    policy_seed: int | None = None,
) -> tuple[Report, Sessions]:
    """Roll ``policy`` for exactly ``sessions`` sessions; R_tra, R_each, Len, category coverage and
    entropy, MCD as (mean, 95 % half-width over sessions).

    policy: a reference policy's name (``random``, ``popularity``, ``greedy``, ``round_robin``; or
        ``llm_only``: greedy items inside the LLM planner's categories), a trained RLModule (acting
        greedily) or any ``act(obs, users) -> actions``.
    lerl: the planner settings (``LERLConfig.env_settings()``; ``{"planner": ...}`` is enough); None or
        planner ``none`` leaves every category allowed. ``llm_only`` defaults to the LLM planner.
    observation_space: the one-user Dict space for modules trained on flattened observations (DQN).
    policy_seed: the reference policy's own seed (random tie-breaks and draws); default ``seed``.
    """
    _check_positive(sessions=sessions, batch_size=batch_size)
    categories = np.asarray(env_config["categories"], dtype=bool)
    if isinstance(policy, str) and policy == "llm_only":
        lerl = {"planner": "llm", **dict(lerl or {})}
    if env_config.get("item_popularity") is None:
        raise ConfigError(
            "the env_config has no item popularity (for MCD); build it with make_lerl_env_config"
        )
    env = evaluation_env(env_config, lerl, seed, min(batch_size, sessions))
    slate = env.core.config.slate_size
    pseed = seed if policy_seed is None else policy_seed
    popularity = env_config.get("item_popularity")
    if isinstance(policy, str):
        if policy == "llm_only":
            act: Policy = GreedyPolicy(categories, env.core.response, slate, pseed).act
        elif policy in REFERENCE_METHODS:
            act = make_policy(
                policy, categories, popularity=popularity, response=env.core.response, slate_size=slate,
                seed=pseed,
            ).act  # fmt: skip
        else:
            raise ConfigError(f"unknown reference policy {policy!r}; known: {', '.join(REFERENCE_METHODS)}")
    elif hasattr(policy, "forward_inference"):
        act = module_policy(policy, observation_space)
    else:
        act = policy
    done = run_sessions(env.core, planned(env, act), sessions, batch_size=batch_size)
    return done.report(categories, dominating_from_popularity(popularity, categories)), done


# --- training ------------------------------------------------------------------------------------------


def _get(result: Mapping[str, Any], *path: str, default: float = float("nan")) -> Any:
    node: Any = result
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def iteration_record(result: Mapping[str, Any]) -> dict[str, Any]:
    """The per-iteration numbers a run keeps: env steps, training return/length, where the time went."""
    timers = result.get("timers", {})
    rec = {
        "iteration": int(result.get("training_iteration", 0)),
        "env_steps": int(_get(result, "env_runners", "num_env_steps_sampled_lifetime", default=0)),
        "return_mean": float(_get(result, "env_runners", "episode_return_mean")),
        "len_mean": float(_get(result, "env_runners", "episode_len_mean")),
        "seconds": float(result.get("time_this_iter_s", float("nan"))),
        "sample_s": float(timers.get("env_runner_sampling_timer", float("nan"))),
        "learn_s": float(timers.get("learner_update_timer", float("nan"))),
    }
    lerl = _get(result, "env_runners", "lerl", default={})
    for key, value in (lerl or {}).items():
        rec[f"lerl/{key}"] = float(value)
    return rec


def _jsonable_report(report: Report) -> dict[str, dict[str, float]]:
    return {k: {"mean": float(m), "ci95": float(c)} for k, (m, c) in report.items()}


def plot_learning_curves(
    series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    path: str | Path,
    title: str,
    references: Mapping[str, float] | None = None,
    ylabel: str = "return per session",
) -> Path:
    """Return vs env steps, one line per method (a band when a std is given), reference policies as
    dashed horizontal lines."""
    import matplotlib.pyplot as plt

    import rayrec.eval.plots  # noqa: F401  (selects the Agg backend)

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, (x, y, sd)) in enumerate(series.items()):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ax.plot(x, y, label=name, color=f"C{i}")
        if sd is not None:
            sd = np.asarray(sd, float)
            ax.fill_between(x, y - sd, y + sd, color=f"C{i}", alpha=0.2)
    for j, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, linestyle="--", linewidth=1, color=f"C{len(series) + j}", label=f"{name} (ref.)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def build_algorithm_config(
    method: str,
    env_config: dict[str, Any],
    *,
    budget: int,
    seed: int,
    training: Mapping[str, Any] | None,
    num_env_runners: int,
    num_envs_per_env_runner: int,
    planner_app: str,
    pool_name: str | None,
) -> Any:
    """The RLlib config of a trained method (checked at once, before anything runs)."""
    if method == "dqn":
        from rayrec.algorithms.baselines.dqn import dqn_config

        return dqn_config(
            env_config, budget, seed=seed, num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner, **dict(training or {}),
        )  # fmt: skip
    return lerl_config(
        env_config, str(TRAINED_METHODS[method]), seed=seed, training=training,
        num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
        planner_app=planner_app, pool_name=pool_name,
    )  # fmt: skip


def _restore_module(checkpoint: Path) -> Any:
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = checkpoint / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
    module = RLModule.from_checkpoint(path)
    module.eval()
    return module


def train_online(
    method: str,
    dataset: str = "ml-100k",
    *,
    env_config: dict[str, Any] | None = None,
    path: Path | None = None,
    options: Mapping[str, Any] | None = None,
    quit_model: str = "category_window",
    quit_params: Mapping[str, Any] | None = None,
    sim: Mapping[str, Any] | None = None,
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    training: Mapping[str, Any] | None = None,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 16,
    eval_points: int = 3,
    valid_sessions: int = 100,
    test_sessions: int = 300,
    eval_batch_size: int = 64,
    planner_app: str = "planner",
    out: Path = Path("runs"),
    run_name: str | None = None,
    log: Callable[[str], object] | None = None,
) -> OnlineRunResult:
    """Train ``method`` (one of ``TRAINED_METHODS``) for ``budget`` env steps, select on validation
    R_tra, report the selected policy on test sessions; see the module docstring for the run directory.

    Ray must be initialised (and, for ``lerl``, the planner app ``planner_app`` running: the algorithm
    fails at once otherwise, naming ``rayrec planner up``). ``env_config`` (``make_lerl_env_config``)
    skips building the simulator (the study shares one per quit model); its ``sim.seed`` is replaced
    by ``seed``. ``training`` holds LERLConfig/PPOConfig (or DQNConfig) ``training`` settings.
    """
    check_method(method)
    if method not in TRAINED_METHODS:
        raise ConfigError(
            f"{method!r} is a reference policy: it needs no training (use evaluate_policy_longterm)"
        )
    _check_positive(
        budget=budget, eval_points=eval_points, valid_sessions=valid_sessions, test_sessions=test_sessions,
        num_envs_per_env_runner=num_envs_per_env_runner, eval_batch_size=eval_batch_size,
    )  # fmt: skip
    if num_env_runners < 0:
        raise ConfigError(f"num_env_runners must be >= 0, not {num_env_runners}")
    say = log or (lambda _msg: None)
    if env_config is None:
        env_config = make_lerl_env_config(
            dataset, None, sim_config(quit_model, quit_params, seed, **dict(sim or {})), path,
            loader_options=dict(options or {}),
        )  # fmt: skip
    else:
        env_config = {**env_config, "sim": {**env_config["sim"], "seed": int(seed)}}
    quit_model = env_config["sim"]["quit_model"]
    uses_pool = TRAINED_METHODS[method] == "llm"
    pool_name = f"lerl-pool-{uuid.uuid4().hex[:8]}" if uses_pool else None  # one pool per run
    config = build_algorithm_config(
        method, env_config, budget=budget, seed=seed, training=training, num_env_runners=num_env_runners,
        num_envs_per_env_runner=num_envs_per_env_runner, planner_app=planner_app, pool_name=pool_name,
    )  # fmt: skip
    lerl_settings = config.env_settings() if hasattr(config, "env_settings") else None
    obs_space = None
    if method == "dqn":
        obs_space = evaluation_env(env_config, None, 0, 1).single_observation_space
    settings = {
        "method": method, "dataset": dataset, "path": path, "options": dict(options or {}),
        "sim": env_config["sim"], "budget": budget, "training": dict(training or {}),
        "lerl": lerl_settings, "num_env_runners": num_env_runners,
        "num_envs_per_env_runner": num_envs_per_env_runner, "eval_points": eval_points,
        "valid_sessions": valid_sessions, "valid_seed": VALID_SEED, "test_sessions": test_sessions,
        "test_seed": TEST_SEED, "eval_batch_size": eval_batch_size, "selection": "best validation R_tra",
    }  # fmt: skip
    run = RunDir(out, run_name or f"{method}-{dataset}-{quit_model}", settings, seed)
    checkpoint = run.file("checkpoint").resolve()

    def evaluate(module: Any, n: int, eval_seed: int) -> Report:
        return evaluate_policy_longterm(
            module, env_config, lerl=lerl_settings, sessions=n, seed=eval_seed, batch_size=eval_batch_size,
            observation_space=obs_space,
        )[0]  # fmt: skip

    algo = config.build_algo()
    history: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    best: tuple[float, int, Report] | None = None
    next_eval = budget / eval_points
    env_steps = 0
    start = time.perf_counter()
    train_seconds = 0.0
    try:
        while env_steps < budget:
            t0 = time.perf_counter()
            result = algo.train()
            train_seconds += time.perf_counter() - t0
            rec = iteration_record(result)
            history.append(rec)
            env_steps = rec["env_steps"]
            say(
                f"{method} seed {seed}: {env_steps}/{budget} env steps, return {rec['return_mean']:.3f}, "
                f"len {rec['len_mean']:.2f}"
            )
            if env_steps >= next_eval or env_steps >= budget:
                next_eval = (math.floor(env_steps / (budget / eval_points)) + 1) * (budget / eval_points)
                valid = evaluate(algo.get_module(), valid_sessions, VALID_SEED)
                evaluations.append(
                    {"env_steps": env_steps, "R_tra": valid["R_tra"][0], "Len": valid["Len"][0]}
                )
                say(f"  validation R_tra {valid['R_tra'][0]:.3f}, Len {valid['Len'][0]:.2f}")
                if best is None or valid["R_tra"][0] > best[0]:
                    best = (valid["R_tra"][0], env_steps, valid)
                    if checkpoint.exists():
                        shutil.rmtree(checkpoint)
                    algo.save_to_path(checkpoint)
        assert best is not None  # at least one iteration ran and the last one is always evaluated
        module = _restore_module(checkpoint)
        test = evaluate(module, test_sessions, TEST_SEED)
    finally:
        algo.stop()
        if uses_pool:
            _kill_pool(pool_name)
    seconds = time.perf_counter() - start
    result_ = OnlineRunResult(
        method, run, test, best[2], history, evaluations, best[1], env_steps, train_seconds
    )
    run.write_json("history.json", history)
    run.write_json(
        "metrics.json",
        {
            "test": _jsonable_report(test),
            "valid": _jsonable_report(best[2]),
            "evaluations": evaluations,
            "selected_env_steps": best[1],
            "env_steps": env_steps,
            "train_seconds": train_seconds,
            "total_seconds": seconds,
            "env_steps_per_s": result_.steps_per_s,
        },
    )
    x = [h["env_steps"] for h in history]
    series = {f"{method} (training, exploring)": (x, [h["return_mean"] for h in history], None)}
    if evaluations:
        series[f"{method} (validation, greedy)"] = (
            [e["env_steps"] for e in evaluations], [e["R_tra"] for e in evaluations], None,
        )  # fmt: skip
    plot_learning_curves(series, run.file("curve.png"), f"{method} · {dataset} · {quit_model} · seed {seed}")
    return result_


def train_lerl(dataset: str = "ml-100k", *, planner: str = "llm", **kwargs: Any) -> OnlineRunResult:
    """One LERL run with ``planner`` (``llm`` | ``round_robin`` | ``random`` | ``none`` = flat PPO with
    LERL's module); the rest as :func:`train_online`."""
    if planner not in PLANNERS:
        raise ConfigError(f"LERL planner must be one of {PLANNERS}, not {planner!r}")
    method = {v: k for k, v in TRAINED_METHODS.items() if v is not None}[planner]
    return train_online(method, dataset, **kwargs)


def _kill_pool(name: str | None) -> None:
    import ray

    from rayrec.algorithms.lerl.reflection_pool import POOL_NAMESPACE

    with contextlib.suppress(ValueError):  # never created (e.g. the build failed first)
        ray.kill(ray.get_actor(name, namespace=POOL_NAMESPACE))
