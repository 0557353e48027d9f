"""``rayrec study laac|lerl DATASET``: the two studies. LAAC's accuracy–novelty and long-tail study
lives here (library: ``rayrec.algorithms.laac.study.run_laac_study``; this only parses options and
prints); LERL's long-term study is ``rayrec.cli.lerl_cmds.study_lerl_command``."""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, err_console
from rayrec.cli.lerl_cmds import study_lerl_command
from rayrec.cli.options import DATASET_ARG, OPTION_OPT, PATH_OPT, parse_key_values

study_app = typer.Typer(help="Studies: every method × seed at one budget.", no_args_is_help=True)


@study_app.command("laac")
def study_laac(
    dataset: str = DATASET_ARG,
    path: Path = PATH_OPT,
    option: list[str] = OPTION_OPT,
    seeds: int = typer.Option(3, help="seeds per method and keep ratio"),
    longtail_keep: list[float] = typer.Option(
        [1.0], "--longtail-keep", help="shares of the train part's long-tail interactions kept (repeatable)"
    ),
    longtail_seeds: int = typer.Option(
        None, help="seeds for the keep ratios below the largest (default: --seeds; 1 keeps the study ~2 h)"
    ),
    methods: list[str] = typer.Option([], "--method", help="methods to run (repeatable; default: all)"),
    budget: int = typer.Option(
        None,
        "--budget",
        help="Algorithm.train() iterations of every offline RL method (default 100; --quick 3)",
    ),
    updates: int = typer.Option(20, help="learner updates per iteration"),
    eval_every: int = typer.Option(10, help="validation NDCG every this many iterations"),
    batch: int = typer.Option(256, help="transitions per learner update"),
    sasrec_epochs: int = typer.Option(200, help="SASRec's epoch cap (early stopping on valid)"),
    llm: str = typer.Option("model", help="π_LLM from the embedded LLM (model) or a random stand-in"),
    llm_model: str = typer.Option(None, help="a local model for π_LLM instead of the embedded SmolLM2"),
    share_llm_table: bool = typer.Option(
        False, help="one π_LLM table (full train) for every keep ratio instead of one per ratio"
    ),
    quit_model: list[str] = typer.Option(
        ["category_window", "fatigue"], "--quit", help="quit models of the long-term evaluation"
    ),
    sim_sessions: int = typer.Option(300, help="simulated sessions per policy and quit model"),
    sim_kind: str = typer.Option("mf", help="simulator response model kind (mf, matrix, latent)"),
    quick: bool = typer.Option(False, "--quick", help="tiny budget, 1 seed, 3 methods (tests, the demo)"),
    out: Path = typer.Option(Path("runs"), help="where the study directory goes"),
) -> None:
    """Every method × seed (× long-tail keep ratio): selection on valid, test metrics, long-term
    metrics in the simulator; Markdown/CSV tables (mean ± std) and PNGs in one study directory."""
    from rayrec.algorithms.laac.study import QUICK, run_laac_study

    # the non-quick defaults of the options above, so --quick can tell what was given
    DEFAULTS = {
        "methods": None,
        "seeds": 3,
        "keeps": [1.0],
        "iterations": None,
        "updates_per_iteration": 20,
        "eval_every": 10,
        "batch_size": 256,
        "sasrec_epochs": 200,
        "sim_sessions": 300,
    }

    options = parse_key_values(option, "--option", "n_users=1000")
    settings: dict = {
        "methods": list(methods) or None,
        "seeds": seeds,
        "longtail_seeds": longtail_seeds,
        "keeps": list(longtail_keep),
        "iterations": budget,
        "updates_per_iteration": updates,
        "eval_every": eval_every,
        "batch_size": batch,
        "sasrec_epochs": sasrec_epochs,
        "sim_sessions": sim_sessions,
    }
    if quick:  # the preset fills every setting left at its default; what is given on the line wins
        for key, value in QUICK.items():
            if settings[key] in (None, DEFAULTS[key]):
                settings[key] = list(value) if isinstance(value, tuple) else value
    settings = {key: value for key, value in settings.items() if value is not None}
    result = run_laac_study(
        dataset,
        path=path,
        options=options,
        llm=llm,
        llm_model=llm_model,
        share_llm_table=share_llm_table,
        quit_models=quit_model,
        sim_kind=sim_kind,
        out=out,
        log=err_console.print,
        **settings,
    )
    console.print(result.markdown.read_text())
    console.print(f"study directory: {result.path}")


study_app.command("lerl")(study_lerl_command)
