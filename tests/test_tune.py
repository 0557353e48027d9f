"""Tune sweeps on real Ray Tune + RLlib: a 2-trial LAAC sweep (synthetic world, random π_LLM) and a
2-trial LERL sweep (round-robin planner) finish, write their outputs, and the best checkpoint restores
to a policy that does exactly what the trial's policy did when the checkpoint was written (the probe
saved beside it); Tuner.restore continues a finished sweep without retraining."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rayrec.cli.tune_cmds import tune_app
from rayrec.errors import ConfigError
from rayrec.tune import LAAC_METRIC, LERL_METRIC, restore_best, tune_laac, tune_lerl
from rayrec.tune.trainables import laac_probe, lerl_probe, load_probe

WORLD = {"n_users": 60, "n_items": 50, "n_categories": 5, "mean_interactions": 10, "seed": 3}


def _check_outputs(res, metric: str, knobs: set[str]) -> None:
    assert res.n_trials == 2
    table = pd.read_csv(res.results_csv)
    assert len(table) == 2 and knobs <= set(table.columns)
    assert table[f"{metric}_best"].notna().all()
    assert res.best_value == pytest.approx(table[f"{metric}_best"].max())
    best = yaml.safe_load(res.best_yaml.read_text())
    assert best["metric"] == metric and set(best["config"]) == knobs
    assert json.loads((res.path / "best.json").read_text())["checkpoint"] == str(res.best_checkpoint)
    assert res.plot.stat().st_size > 5_000
    assert (res.best_checkpoint / "rllib_checkpoint.json").is_file()


def test_laac_sweep_best_checkpoint_restores_and_resumes(ray_session, tmp_path) -> None:
    res = tune_laac(
        "synthetic", options=WORLD, samples=2, iterations=2, grace_period=1, updates_per_iteration=4,
        batch_size=32, history_len=4, K=6, llm="random", out=tmp_path, progress=False,
    )  # fmt: skip
    _check_outputs(
        res, LAAC_METRIC, {"beta", "lam", "lr_actor", "lr_critic", "actor_update_interval", "gamma"}
    )
    assert 0.0 <= res.best_value <= 1.0
    probe = load_probe(res.best_checkpoint)["top_k"]
    algo = restore_best(res.path)
    try:
        from rayrec.data import load_dataset, split_dataset

        parts = split_dataset(load_dataset("synthetic", **WORLD), "leave_last_out")
        assert algo.config.beta == pytest.approx(res.best_config["beta"])
        np.testing.assert_array_equal(laac_probe(algo, parts.train, k=probe.shape[1]), probe)
    finally:
        algo.stop()
    again = tune_laac(resume=res.path, progress=False)  # Tuner.restore on the finished experiment
    assert again.n_trials == 2 and again.best_checkpoint == res.best_checkpoint
    assert again.best_value == pytest.approx(res.best_value)


def test_lerl_sweep_from_the_cli_best_checkpoint_restores(ray_session, tmp_path) -> None:
    """`rayrec tune lerl` (its typer function): live table, summary, outputs; the best restores."""
    args = ["lerl", "synthetic", "--samples", "2", "--iterations", "2", "--grace-period", "1",
            "--planner", "round_robin", "--valid-sessions", "8", "--num-envs", "8", "--sim", "max_turn=10",
            "--set", "train_batch_size_per_learner=100", "--set", "minibatch_size=50",
            "--set", "num_epochs=1", "--out", str(tmp_path)]  # fmt: skip
    for key, value in WORLD.items():
        args += ["--option", f"{key}={value}"]
    proc = CliRunner().invoke(tune_app, args)
    assert proc.exit_code == 0, (proc.output[-3000:], proc.exception)
    assert "2 TERMINATED" in proc.output  # Tune's live table, final state
    (sweep,) = tmp_path.glob("tune-lerl-synthetic-*")
    assert f"checkpoint:      {json.loads((sweep / 'best.json').read_text())['checkpoint']}" in proc.output
    best = json.loads((sweep / "best.json").read_text())
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 2 and best["value"] == pytest.approx(table[f"{LERL_METRIC}_best"].max())
    knobs = {"replan_every", "m", "kappa", "n_reflections", "lr", "entropy_coeff"}
    assert (
        knobs <= set(table.columns)
        and set(yaml.safe_load((sweep / "best_config.yaml").read_text())["config"]) == knobs
    )
    assert (sweep / "search.png").stat().st_size > 5_000
    probe = load_probe(best["checkpoint"])
    obs = {key[len("obs/") :]: value for key, value in probe.items() if key.startswith("obs/")}
    algo = restore_best(sweep)
    try:
        assert algo.config.replan_every == best["config"]["replan_every"]
        np.testing.assert_array_equal(lerl_probe(algo.get_module(), obs), probe["actions"])
    finally:
        algo.stop()


def test_bad_settings_fail_before_ray(tmp_path) -> None:
    with pytest.raises(ConfigError, match="samples"):
        tune_laac("synthetic", samples=0, out=tmp_path)
    with pytest.raises(ConfigError, match="planner"):
        tune_lerl("synthetic", planner="oracle", out=tmp_path)
    with pytest.raises(ConfigError, match="sweep.json"):
        tune_lerl(resume=tmp_path)
    assert not any(tmp_path.iterdir())
