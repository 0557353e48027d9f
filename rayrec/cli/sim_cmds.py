"""``rayrec simulator fit`` and ``rayrec simulate``: fit the simulator's response model and judge the
reference policies on it with the long-term metrics (95% intervals over sessions).

Every ``SimConfig`` field and every ``FitConfig`` field has a flag, and loader options pass through
``--option key=value``; both commands key the cached model by all of them (``rayrec.envs.artifacts``).
Values are snake_case throughout (``two_tower``, ``category_window``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, render_table
from rayrec.cli.options import DATASET_ARG, PATH_OPT, parse_key_values
from rayrec.data import load_dataset
from rayrec.envs.artifacts import (
    RESPONSE_KINDS,
    build_response_model,
    cache_key,
    cached_response_model,
    check_kind,
    default_artifact_dir,
    require_categories,
)
from rayrec.envs.config import RESPONSE_SAMPLING, SimConfig
from rayrec.envs.feedback import FEEDBACK_KINDS, FitConfig
from rayrec.envs.policies import POLICIES
from rayrec.envs.quit_models import QUIT_MODELS
from rayrec.envs.rollout import simulate_policy
from rayrec.errors import ConfigError

simulator_app = typer.Typer(
    help="User simulator: fit its response model.", no_args_is_help=True, add_completion=False
)


@simulator_app.callback()  # a group callback keeps ``fit`` a sub-command however the app is built
def _simulator() -> None:
    """User simulator: fit its response model."""


_DEFAULT_FIT = FitConfig()
OPTION_OPT = typer.Option(
    [], "--option", help="loader option key=value, repeatable (items_path=…, n_users=…)"
)
KIND_OPT = typer.Option("mf", help=f"response model: {' | '.join(RESPONSE_KINDS)}")
DIM_OPT = typer.Option(_DEFAULT_FIT.dim, help="factor dimension")
LR_OPT = typer.Option(_DEFAULT_FIT.lr, help="Adam learning rate")
L2_OPT = typer.Option(_DEFAULT_FIT.l2, help="L2 weight decay on the rows a batch touches")
BATCH_OPT = typer.Option(_DEFAULT_FIT.batch_size, help="training batch size")
EPOCHS_OPT = typer.Option(_DEFAULT_FIT.max_epochs, help="maximum epochs (early stopping usually ends sooner)")
PATIENCE_OPT = typer.Option(_DEFAULT_FIT.patience, help="epochs without validation gain before stopping")
VALID_OPT = typer.Option(_DEFAULT_FIT.valid_frac, help="share of training rows used for early stopping")
TEST_OPT = typer.Option(_DEFAULT_FIT.test_frac, help="share of interactions held out for the reported fit")
FEEDBACK_OPT = typer.Option("auto", help=f"feedback scale: auto | {' | '.join(FEEDBACK_KINDS)}")
POSITIVE_OPT = typer.Option(None, help="AUC label of ratings (>= this); default 3/4 up the scale")
NEG_OPT = typer.Option(_DEFAULT_FIT.neg_ratio, help="implicit feedback: sampled negatives per positive")
CAP_OPT = typer.Option(_DEFAULT_FIT.ratio_cap, help="continuous feedback: clip to [0, cap] and normalise")


def _fit_config(**settings: object) -> FitConfig:
    return FitConfig.from_dict(settings)


@simulator_app.command("fit")
def fit(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    kind: str = KIND_OPT,
    out: Path = typer.Option(None, help="artifact directory (default: the keyed cache directory)"),
    seed: int = typer.Option(0, help="seed of the holdout split, negative sampling and training"),
    dim: int = DIM_OPT,
    lr: float = LR_OPT,
    l2: float = L2_OPT,
    batch_size: int = BATCH_OPT,
    epochs: int = EPOCHS_OPT,
    patience: int = PATIENCE_OPT,
    valid_frac: float = VALID_OPT,
    test_frac: float = TEST_OPT,
    feedback: str = FEEDBACK_OPT,
    positive_rating: float = POSITIVE_OPT,
    neg_ratio: int = NEG_OPT,
    ratio_cap: float = CAP_OPT,
) -> None:
    """Build the response model (fitted kinds: on a random holdout), print its report in the dataset's
    feedback scale (RMSE for ratings, log loss for clicks, AUC) and save the artifact."""
    check_kind(kind)
    cfg = _fit_config(
        dim=dim, lr=lr, l2=l2, batch_size=batch_size, max_epochs=epochs, patience=patience,
        valid_frac=valid_frac, test_frac=test_frac, feedback=feedback, positive_rating=positive_rating,
        neg_ratio=neg_ratio, ratio_cap=ratio_cap, seed=seed,
    )  # fmt: skip
    options = parse_key_values(option, "--option", "n_users=1000")
    ds = require_categories(load_dataset(dataset, path, **options))
    with console.status(f"building the {kind} response model on {ds.n_interactions:,} interactions"):
        model = build_response_model(ds, kind, cfg)
    target = out if out is not None else default_artifact_dir(dataset, kind, path, options, cfg)
    model.save(target, extra_meta={"cache_key": cache_key(dataset, kind, path, options, cfg)})
    report = model.report
    rows = [
        {"metric": k, "value": v}
        for k, v in report.items()
        if isinstance(v, (int, float, str)) and k not in ("dataset", "kind", "seconds")
    ]
    if "seconds" in report:
        rows.append({"metric": "seconds", "value": round(report["seconds"], 2)})
    console.print(render_table(f"{dataset} response model ({kind}): report", rows))
    if report.get("observed_share", 1.0) < 0.5:
        console.print(
            f"note: only {report['observed_share']:.1%} of the matrix cells are observed; the rest take the "
            "observed mean, so most of this ground truth is a constant (the matrix kind is meant for a "
            "fully observed matrix such as KuaiRec's small matrix)",
            highlight=False,
        )
    console.print(f"saved to {target}", highlight=False)


def simulate(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    policy: str = typer.Option("popularity", help=f"reference policy: {' | '.join(POLICIES)}"),
    episodes: int = typer.Option(1000, help="sessions to run (each started session is run to its end)"),
    batch_size: int = typer.Option(1024, help="users stepped at once"),
    history_len: int = typer.Option(10, help="recent items in the observation"),
    slate_size: int = typer.Option(1, help="items per step"),
    max_turn: int = typer.Option(30, help="session length cap"),
    quit_model: str = typer.Option("category_window", help=f"quit model: {' | '.join(QUIT_MODELS)}"),
    quit_param: list[str] = typer.Option([], help="quit-model parameter key=value (repeatable)"),
    response_sampling: str = typer.Option("expected", help=f"reward: {' | '.join(RESPONSE_SAMPLING)}"),
    reward_noise: float = typer.Option(0.0, help="std of Gaussian noise on each response"),
    item_correlation: float = typer.Option(0.2, help="KuaiSim's rho: slate-similarity penalty"),
    user_features: bool = typer.Option(False, help="put the dataset's user features in the observation"),
    category_history_obs: bool = typer.Option(
        True, help="put per-category counts/rewards in the observation"
    ),
    seed: int = typer.Option(0, help="seed of user sampling and of the policy"),
    kind: str = typer.Option("mf", help=f"response model: {' | '.join(RESPONSE_KINDS)} (built on first use)"),
    response: Path = typer.Option(None, help="response-model artifact dir (default: the keyed cache)"),
    fit_seed: int = typer.Option(0, help="fit: seed of the holdout split and training"),
    dim: int = DIM_OPT,
    lr: float = LR_OPT,
    l2: float = L2_OPT,
    fit_batch_size: int = BATCH_OPT,
    epochs: int = EPOCHS_OPT,
    patience: int = PATIENCE_OPT,
    valid_frac: float = VALID_OPT,
    test_frac: float = TEST_OPT,
    feedback: str = FEEDBACK_OPT,
    positive_rating: float = POSITIVE_OPT,
    neg_ratio: int = NEG_OPT,
    ratio_cap: float = CAP_OPT,
) -> None:
    """Run a reference policy in the simulator; print R_tra, R_each, Len, category coverage/entropy and
    MCD with 95% intervals."""
    check_kind(kind)
    if policy not in POLICIES:  # checked before any fitting
        raise ConfigError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    cfg = _fit_config(
        dim=dim, lr=lr, l2=l2, batch_size=fit_batch_size, max_epochs=epochs, patience=patience,
        valid_frac=valid_frac, test_frac=test_frac, feedback=feedback, positive_rating=positive_rating,
        neg_ratio=neg_ratio, ratio_cap=ratio_cap, seed=fit_seed,
    )  # fmt: skip
    config = SimConfig(
        history_len=history_len,
        slate_size=slate_size,
        max_turn=max_turn,
        quit_model=quit_model,
        quit_params=parse_key_values(quit_param, "--quit-param", "window=4"),
        response_sampling=response_sampling,
        reward_noise=reward_noise,
        item_correlation=item_correlation,
        user_features=user_features,
        category_history_obs=category_history_obs,
        seed=seed,
    )
    options = parse_key_values(option, "--option", "n_users=1000")
    ds = require_categories(load_dataset(dataset, path, **options))
    with console.status("loading the response model (building it on first use)"):
        model, where = cached_response_model(
            dataset, kind, response, dataset_path=path, loader_options=options, fit=cfg, data=ds
        )
    report, sessions = simulate_policy(ds, model, policy, config, episodes, batch_size)
    rows = [{"metric": k, "mean": m, "ci95 ±": c} for k, (m, c) in report.items()]
    console.print(render_table(f"{dataset} · {policy} · {quit_model} · {episodes} sessions", rows))
    quits = ", ".join(f"{r}: {n}" for r, n in sessions.quit_counts().items())
    console.print(f"sessions ended by {quits}; response model {where}", highlight=False)
