"""``rayrec train lerl`` and ``rayrec study lerl``: one LERL run, and every method × seed × quit model at
one environment-step budget (``rayrec.algorithms.lerl.train`` / ``.study`` do the work).

Every setting is checked before Ray starts (``ConfigError``, one line, exit 2): planner, quit model,
κ, m against the dataset's categories, method names, budgets. Then Ray starts (or joins ``--address``)
and, when the LLM planner is needed and its app is not running, this command deploys it with
``rayrec planner up``'s own function (the algorithm itself never deploys: ``algorithms`` sit below
``serve``); ``--no-deploy-planner`` fails instead, saying how to start it.

Typer functions, wired by ``rayrec.cli``: :func:`train_lerl_command` as ``rayrec train lerl`` and
:func:`study_lerl_command` as ``rayrec study lerl``. ``--quit`` takes several values after one flag
(``--quit category_window fatigue temper``) as well as repeated flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from rayrec.cli.console import console, render_table
from rayrec.cli.options import DATASET_ARG, OPTION_OPT, PATH_OPT, parse_key_values
from rayrec.errors import ConfigError

PLANNER_OPT = typer.Option("llm", help="llm | round_robin | random | none (none = flat PPO, LERL's module)")
QUIT_MODEL_OPT = typer.Option("category_window", help="quit model: category_window | fatigue | temper")
QUIT_PARAM_OPT = typer.Option([], help="quit-model parameter key=value (repeatable)")
BUDGET_OPT = typer.Option(None, help="environment steps per trained run (default: DEFAULT_BUDGET)")
QUICK_OPT = typer.Option(False, "--quick", help="tiny budget and evaluation (tests, the demo)")
M_OPT = typer.Option(3, "--m", help="categories per plan")
REPLAN_OPT = typer.Option(5, help="steps between plans")
REFLECT_N_OPT = typer.Option(1, help="N_s: reflections sampled into each planner prompt")
MASK_OPT = typer.Option("soft", help="soft (−κ outside the plan) | hard")
KAPPA_OPT = typer.Option(5.0, help="κ: the soft mask's logit penalty (>= 0)")
ENCODER_OPT = typer.Option("transformer", help="history encoder: transformer | gru")
REFLECTION_OPT = typer.Option("template", help="template | llm (generated reflections)")
BATCH_OPT = typer.Option(256, help="PPO train batch per update (env steps); small, for small budgets")
MINIBATCH_OPT = typer.Option(128, help="PPO minibatch size")
EPOCHS_OPT = typer.Option(4, help="PPO epochs per train batch")
RUNNERS_OPT = typer.Option(0, help="remote EnvRunners (0: sample in the driver)")
ENVS_OPT = typer.Option(16, help="simulated users per EnvRunner")
EVAL_POINTS_OPT = typer.Option(3, help="validation evaluations per run (model selection)")
VALID_OPT = typer.Option(100, help="validation sessions per evaluation")
TEST_OPT = typer.Option(300, help="test sessions for the selected policy")
APP_OPT = typer.Option("planner", "--planner-app", help="Serve app name of the planner")
DEPLOY_OPT = typer.Option(True, help="deploy the planner app when it is not running")
PLANNER_CPUS_OPT = typer.Option(1.0, help="CPUs of the planner replica when this command deploys it")
ADDRESS_OPT = typer.Option(None, "--address", help="Ray cluster address (default: a local Ray)")
CPUS_OPT = typer.Option(4, help="logical CPUs of the local Ray (EnvRunners, planner, driver)")
OUT_OPT = typer.Option(Path("runs"), help="where run directories go")


def _training(
    m: int, replan_every: int, n_reflections: int, mask: str, kappa: float, encoder: str, reflection: str,
    train_batch: int, minibatch: int, epochs: int, quick: bool,
) -> dict[str, Any]:  # fmt: skip
    from rayrec.algorithms.lerl.train import QUICK

    knobs: dict[str, Any] = {
        "m": m, "replan_every": replan_every, "n_reflections": n_reflections, "mask": mask, "kappa": kappa,
        "encoder": encoder, "reflection": reflection, "train_batch_size_per_learner": train_batch,
        "minibatch_size": minibatch, "num_epochs": epochs,
    }  # fmt: skip
    if quick:
        knobs.update(QUICK["training"])
    return knobs


def _dataset_categories(dataset: str, path: Path | None, options: dict[str, Any]) -> Any:
    from rayrec.data import load_dataset
    from rayrec.envs.artifacts import require_categories

    return require_categories(load_dataset(dataset, path, **options)).categories


def _start_ray(address: str | None, num_cpus: int) -> None:
    """Join ``address``, else the Ray cluster on this machine (where ``rayrec planner up`` puts the
    planner), else start a local Ray for this command alone."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    quiet = {"log_to_driver": False, "logging_level": "ERROR"}
    if address is not None:
        ray.init(address=address, **quiet)
        return
    try:
        ray.init(address="auto", **quiet)
    except ConnectionError:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)


def ensure_planner_app(app: str, deploy: bool, num_cpus: float = 1.0, address: str | None = None) -> None:
    """The planner app must run before LLM-planned training: deploy it with ``rayrec planner up``'s
    function (Serve without an HTTP proxy unless one runs already), or fail saying how to start it."""
    from ray import serve

    from rayrec.algorithms.lerl.lerl import ensure_planner
    from rayrec.cli.planner_cmds import up

    try:
        running = app in serve.status().applications
    except Exception:  # noqa: BLE001 (no Serve instance yet: nothing runs)
        running = False
    if running or not deploy:
        ensure_planner(app)  # the ConfigError naming `rayrec planner up`
        return
    serve.start(proxy_location="Disabled")  # `up` then joins this instance; its HTTP options are unused
    up(
        name=app, address=address, backend="transformers", model=None, backend_kwargs="{}", num_replicas=1,
        min_replicas=1, max_replicas=None, num_cpus=num_cpus, num_gpus=0.0, max_batch_size=16,
        batch_wait_ms=10.0, max_ongoing_requests=64, cache_size=4096, torch_threads=None,
        http_host="127.0.0.1", http_port=8000, cluster_cpus=None,
    )  # fmt: skip


def _say(message: str) -> None:
    """Progress lines verbatim (``[quit · seed · method]`` is text, not rich markup)."""
    console.print(message, highlight=False, markup=False)


def _report_rows(report: dict[str, tuple[float, float]]) -> list[dict[str, object]]:
    return [{"metric": k, "mean": m, "ci95 ±": c} for k, (m, c) in report.items()]


def train_lerl_command(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    planner: str = PLANNER_OPT,
    quit_model: str = QUIT_MODEL_OPT,
    quit_param: list[str] = QUIT_PARAM_OPT,
    budget: int = BUDGET_OPT,
    quick: bool = QUICK_OPT,
    seed: int = typer.Option(0, help="training seed (validation and test sessions have fixed seeds)"),
    m: int = M_OPT,
    replan_every: int = REPLAN_OPT,
    n_reflections: int = REFLECT_N_OPT,
    mask: str = MASK_OPT,
    kappa: float = KAPPA_OPT,
    encoder: str = ENCODER_OPT,
    reflection: str = REFLECTION_OPT,
    train_batch: int = BATCH_OPT,
    minibatch: int = MINIBATCH_OPT,
    epochs: int = EPOCHS_OPT,
    num_env_runners: int = RUNNERS_OPT,
    envs_per_runner: int = ENVS_OPT,
    eval_points: int = EVAL_POINTS_OPT,
    valid_sessions: int = VALID_OPT,
    test_sessions: int = TEST_OPT,
    planner_app: str = APP_OPT,
    deploy_planner: bool = DEPLOY_OPT,
    planner_cpus: float = PLANNER_CPUS_OPT,
    address: str = ADDRESS_OPT,
    num_cpus: int = CPUS_OPT,
    out: Path = OUT_OPT,
) -> None:
    """Train LERL (or one of its ablations) for an env-step budget, select on validation sessions,
    print the selected policy's long-term test metrics; everything lands in a run directory."""
    from rayrec.algorithms.lerl.planner_env import make_lerl_env_config
    from rayrec.algorithms.lerl.train import DEFAULT_BUDGET, QUICK, check_training, sim_config, train_lerl

    options = parse_key_values(option, "--option", "n_users=1000")
    sim = sim_config(quit_model, parse_key_values(quit_param, "--quit-param", "window=4"), seed)
    training = _training(
        m,
        replan_every,
        n_reflections,
        mask,
        kappa,
        encoder,
        reflection,
        train_batch,
        minibatch,
        epochs,
        quick,
    )
    check_training(planner, training, _dataset_categories(dataset, path, options))
    evaluation = {
        "eval_points": eval_points,
        "valid_sessions": valid_sessions,
        "test_sessions": test_sessions,
    }
    if quick:
        evaluation = {k: QUICK[k] for k in evaluation}
        envs_per_runner = QUICK["num_envs_per_env_runner"]
    budget = budget if budget is not None else (QUICK["budget"] if quick else DEFAULT_BUDGET)
    env_config = make_lerl_env_config(dataset, None, sim, path, loader_options=options)
    _start_ray(address, num_cpus)
    if planner == "llm":
        with console.status(f"planner app {planner_app!r}: checking (deploying loads the model)…"):
            ensure_planner_app(planner_app, deploy_planner, planner_cpus, address)
    result = train_lerl(
        dataset, planner=planner, env_config=env_config, path=path, options=options, budget=budget, seed=seed,
        training=training, num_env_runners=num_env_runners, num_envs_per_env_runner=envs_per_runner,
        planner_app=planner_app, out=out, log=_say, **evaluation,
    )  # fmt: skip
    console.print(
        render_table(
            f"{dataset} · LERL planner={planner} · {quit_model} · "
            f"test ({evaluation['test_sessions']} sessions)",
            _report_rows(result.test),
        )
    )
    console.print(
        f"{result.env_steps} env steps in {result.seconds:.0f} s ({result.steps_per_s:.1f} steps/s); "
        f"selected at {result.best_env_steps} steps; run directory {result.run.path}",
        highlight=False,
    )


def study_lerl_command(
    dataset: str = DATASET_ARG,
    more_quit: list[str] = typer.Argument(
        None, metavar="[QUIT_MODEL]...", help="more quit models (what follows --quit's first value)"
    ),
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    seeds: int = typer.Option(3, help="seeds on the first quit model"),
    seeds_other: int = typer.Option(
        1, help="seeds on the other quit models (1 keeps the default study near 2 h on 2 cores)"
    ),
    quit_opt: list[str] = typer.Option(
        ["category_window", "fatigue", "temper"], "--quit", help="quit models (several after one flag)"
    ),
    methods: list[str] = typer.Option(
        [], "--method", help="methods to run (repeatable; default: all of train.METHODS)"
    ),
    budget: int = BUDGET_OPT,
    quick: bool = QUICK_OPT,
    m: int = M_OPT,
    replan_every: int = REPLAN_OPT,
    n_reflections: int = REFLECT_N_OPT,
    mask: str = MASK_OPT,
    kappa: float = KAPPA_OPT,
    encoder: str = ENCODER_OPT,
    reflection: str = REFLECTION_OPT,
    train_batch: int = BATCH_OPT,
    minibatch: int = MINIBATCH_OPT,
    epochs: int = EPOCHS_OPT,
    num_env_runners: int = RUNNERS_OPT,
    envs_per_runner: int = ENVS_OPT,
    eval_points: int = EVAL_POINTS_OPT,
    valid_sessions: int = VALID_OPT,
    test_sessions: int = TEST_OPT,
    planner_app: str = APP_OPT,
    deploy_planner: bool = DEPLOY_OPT,
    planner_cpus: float = PLANNER_CPUS_OPT,
    address: str = ADDRESS_OPT,
    num_cpus: int = CPUS_OPT,
    out: Path = OUT_OPT,
) -> None:
    """Every method × seed × quit model at one env-step budget: Markdown/CSV tables (mean ± std over
    seeds) and learning curves in a study directory."""
    from rayrec.algorithms.lerl.study import check_study, run_study
    from rayrec.algorithms.lerl.train import DEFAULT_BUDGET, LLM_METHODS, METHODS, QUICK, check_training
    from rayrec.envs.quit_models import QUIT_MODELS

    if dataset in QUIT_MODELS:
        raise ConfigError(
            f"{dataset!r} is a quit model: name the dataset first (rayrec study lerl ml-100k ...)"
        )
    quit_models = [*quit_opt, *(more_quit or [])]
    chosen = list(methods) or list(METHODS)
    budget = budget if budget is not None else (QUICK["budget"] if quick else DEFAULT_BUDGET)
    check_study(chosen, quit_models, seeds, seeds_other, budget)
    options = parse_key_values(option, "--option", "n_users=1000")
    training = _training(
        m,
        replan_every,
        n_reflections,
        mask,
        kappa,
        encoder,
        reflection,
        train_batch,
        minibatch,
        epochs,
        quick,
    )
    check_training("random", training, _dataset_categories(dataset, path, options))
    evaluation = {
        "eval_points": eval_points,
        "valid_sessions": valid_sessions,
        "test_sessions": test_sessions,
    }
    if quick:
        evaluation = {k: QUICK[k] for k in evaluation}
        envs_per_runner = QUICK["num_envs_per_env_runner"]
    _start_ray(address, num_cpus)
    if any(m_ in LLM_METHODS for m_ in chosen):
        with console.status(f"planner app {planner_app!r}: checking (deploying loads the model)…"):
            ensure_planner_app(planner_app, deploy_planner, planner_cpus, address)
    result = run_study(
        dataset, methods=chosen, quit_models=quit_models, seeds=seeds, seeds_other=seeds_other, budget=budget,
        path=path, options=options, training=training, num_env_runners=num_env_runners,
        num_envs_per_env_runner=envs_per_runner, planner_app=planner_app, out=out,
        log=_say, **evaluation,
    )  # fmt: skip
    console.print(result.markdown.read_text(), highlight=False, markup=False, soft_wrap=True)
    console.print(f"study directory {result.path}", highlight=False)
