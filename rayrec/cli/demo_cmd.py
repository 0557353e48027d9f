"""``rayrec demo``: the main job on the embedded defaults, what ``make demo`` runs.

Until LAAC and LERL land it shows the two yardsticks they will be judged by: the offline ranking
table on MovieLens-100K and the simulator's reference policies on long-term satisfaction.
It only orchestrates and prints: the work lives in ``rayrec.algorithms.baselines`` and ``rayrec.envs``,
imported when the command runs, so a mistyped option fails at once.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rayrec.cli.console import console, render_comparison


def demo(
    out: Path = typer.Option(Path("runs"), help="root of the run directories"),
    episodes: int = typer.Option(1000, min=1, help="simulated sessions per reference policy"),
    seed: int = typer.Option(0, help="seed of the random baseline, user sampling and policies"),
) -> None:
    """Offline baselines on MovieLens-100K, then the simulator's reference policies (long-term metrics)."""
    from rayrec.algorithms.baselines import run_baselines
    from rayrec.data import load_dataset
    from rayrec.envs.artifacts import cached_response_model
    from rayrec.envs.config import SimConfig
    from rayrec.envs.policies import POLICIES
    from rayrec.envs.rollout import simulate_policy
    from rayrec.eval.plots import metric_bars

    console.rule("[bold]1 · offline baselines · ml-100k · leave_last_out · k=10")
    results, run = run_baselines("ml-100k", None, "leave_last_out", 10, seed, out, "demo", log=console.print)
    console.print(render_comparison("full-catalog ranking, seen items excluded", results))

    config = SimConfig(seed=seed)
    console.rule(f"[bold]2 · simulator · reference policies · quit model {config.quit_model}")
    ds = load_dataset("ml-100k")
    with console.status("loading the simulator's response model (fitting it on first use)"):
        model, where = cached_response_model("ml-100k")
    long_term = {}
    for policy in POLICIES:
        report, _ = simulate_policy(ds, model, policy, config, episodes)
        long_term[policy] = {k: mean for k, (mean, _) in report.items()}
    console.print(
        render_comparison(f"{episodes} sessions per policy (means; `rayrec simulate` adds CIs)", long_term)
    )
    run.write_json("simulator.json", {"config": config, "response_model": str(where), "results": long_term})
    metric_bars(
        long_term, list(next(iter(long_term.values()))), run.file("simulator.png"), "reference policies"
    )
    console.print(f"run directory: {run.path}")
