"""LERL's runs and study on the real simulator with real RLlib (tiny budgets, planners without the LLM):
a run directory with metrics, checkpoint and curve; the long-term evaluation of a trained policy; a mini
study's tables; DQN; the CLI's bad input, refused before anything runs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rayrec.algorithms.baselines.dqn import dqn_config
from rayrec.algorithms.lerl.planner_env import make_lerl_env_config
from rayrec.algorithms.lerl.study import run_study
from rayrec.algorithms.lerl.train import (
    QUICK,
    TEST_SEED,
    _restore_module,
    evaluate_policy_longterm,
    train_lerl,
)
from rayrec.cli.lerl_cmds import ensure_planner_app, study_lerl_command, train_lerl_command
from rayrec.data import load_dataset
from rayrec.envs.artifacts import cached_response_model
from rayrec.envs.config import SimConfig
from rayrec.envs.rollout import simulate_policy
from rayrec.errors import ConfigError

TINY = {"train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 1}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return cached_response_model("ml-100k", path=tmp_path_factory.mktemp("lerl-study") / "mf")[1]


@pytest.fixture(scope="module")
def env_config(artifact) -> dict:
    return make_lerl_env_config("ml-100k", artifact, SimConfig(seed=0))


def _finite_ci(report: dict, *keys: str) -> None:
    for key in keys:
        mean, ci = report[key]
        assert math.isfinite(mean) and math.isfinite(ci) and ci >= 0, (key, report[key])


@pytest.mark.timeout(180)
def test_train_lerl_writes_the_run_dir_and_the_selected_policy_evaluates(
    ray_session, env_config, tmp_path
) -> None:
    result = train_lerl(
        "ml-100k", planner="round_robin", env_config=env_config, budget=400, seed=1, training=TINY,
        num_envs_per_env_runner=8, eval_points=2, valid_sessions=16, test_sessions=40, out=tmp_path,
    )  # fmt: skip
    run = result.run.path
    for name in ("config.json", "versions.json", "metrics.json", "history.json", "curve.png"):
        assert (run / name).is_file(), name
    assert (run / "curve.png").stat().st_size > 1000
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 1 and config["lerl"]["planner"] == "round_robin" and config["budget"] == 400
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["env_steps"] >= 400 and len(metrics["evaluations"]) == 2  # selection at 200 and 400 steps
    assert metrics["selected_env_steps"] in [e["env_steps"] for e in metrics["evaluations"]]
    assert metrics["test"]["R_tra"]["mean"] == pytest.approx(result.test["R_tra"][0])
    _finite_ci(result.test, "R_tra", "Len", "R_each", "cat_coverage", "MCD")
    history = json.loads((run / "history.json").read_text())
    assert [h["env_steps"] for h in history] == sorted(h["env_steps"] for h in history)
    assert history[-1]["lerl/plans"] > 0  # the planner ran during training

    # The checkpoint is the selected policy; rolled again on the same test sessions it gives the same
    # numbers (greedy actions, fixed session seed), and exactly the sessions asked for.
    module = _restore_module(run / "checkpoint")
    lerl = config["lerl"]
    report, sessions = evaluate_policy_longterm(module, env_config, lerl=lerl, sessions=40, seed=TEST_SEED)
    assert report == result.test and len(sessions.rewards) == 40
    other, _ = evaluate_policy_longterm(module, env_config, lerl=lerl, sessions=40, seed=TEST_SEED + 1)
    assert other != report  # another session seed, other users


def test_reference_policies_are_evaluated_as_simulate_does(env_config, artifact) -> None:
    """Same rollout machinery: a reference policy scores exactly what ``rayrec simulate`` reports."""
    from rayrec.envs.response import ResponseModel

    ds = load_dataset("ml-100k")
    for policy in ("greedy", "round_robin"):
        ours, _ = evaluate_policy_longterm(policy, env_config, sessions=64, seed=5)
        theirs, _ = simulate_policy(
            ds, ResponseModel.load(artifact), policy, SimConfig(seed=5), 64, batch_size=64
        )
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, err_msg=f"{policy} {key}")
    assert ours["Len"][0] == 30.0  # round-robin never repeats a category within the window


@pytest.mark.timeout(180)
def test_mini_study_writes_mean_std_tables_and_curves(ray_session, env_config, tmp_path) -> None:
    result = run_study(
        "ml-100k", methods=["flat_ppo", "greedy"], quit_models=["category_window"], seeds=2, budget=200,
        training=TINY, num_envs_per_env_runner=8, eval_points=1, valid_sessions=8, test_sessions=24,
        out=tmp_path,
    )  # fmt: skip
    with result.csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["flat_ppo", "greedy"]
    assert all(r["n_seeds"] == "2" and r["quit_model"] == "category_window" for r in rows)
    ppo = rows[0]
    assert float(ppo["R_tra_std"]) >= 0 and float(ppo["env_steps"]) >= 200
    assert float(rows[1]["R_tra_std"]) == 0.0  # greedy is deterministic on the shared test sessions
    md = result.markdown.read_text()
    assert "| flat_ppo | 2 |" in md and "| greedy | 2 |" in md and " ± " in md and "### category_window" in md
    with (result.path / "runs.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4  # 2 methods × 2 seeds
    for png in ("curves_category_window.png", "valid_category_window.png"):
        assert (result.path / png).stat().st_size > 1000


@pytest.mark.timeout(180)
def test_dqn_trains_an_iteration_and_evaluates_greedily(ray_session, env_config) -> None:
    algo = dqn_config(env_config, budget=300, num_envs_per_env_runner=8).build_algo()
    try:
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 300
        loss = result["learners"]["default_policy"]["qf_loss"]
        assert math.isfinite(loss)
        space = algo.env_runner.env.unwrapped.single_observation_space
        report, sessions = evaluate_policy_longterm(
            algo.get_module(), env_config, sessions=24, seed=TEST_SEED, observation_space=space
        )
    finally:
        algo.stop()
    _finite_ci(report, "R_tra", "Len")
    assert len(sessions.rewards) == 24


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_lerl_command)
    app.command("study")(study_lerl_command)
    return app


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "--planner", "gpt"], "planner must be one of"),
        (["train", "--planner", "random", "--m", "25"], "set m <= 19"),
        (["train", "--planner", "random", "--kappa", "-1"], "kappa"),
        (["train", "--planner", "random", "--quit-model", "bored"], "unknown quit model 'bored'"),
        (["study", "ml-100k", "--quit", "category_window", "bored"], "unknown quit model 'bored'"),
        (["study", "ml-100k", "--method", "oracle"], "unknown method 'oracle'"),
        (["study", "ml-100k", "--kappa", "-1"], "kappa"),
        (["study", "ml-100k", "--m", "20"], "set m <= 19"),
        (["study", "fatigue"], "name the dataset first"),
    ],
)
def test_cli_bad_input_is_a_config_error_before_anything_runs(args: list, match: str, tmp_path) -> None:
    result = CliRunner().invoke(_cli(), [*args, "--out", str(tmp_path), "--quick"])
    assert isinstance(result.exception, ConfigError), result.output
    assert match in str(result.exception)
    assert not any(tmp_path.iterdir())  # no run directory: refused at config time


def test_missing_planner_without_deploy_names_the_command(ray_session) -> None:
    with pytest.raises(ConfigError, match="rayrec planner up --name no-such-planner"):
        ensure_planner_app("no-such-planner", deploy=False)


def test_quick_preset_is_tiny() -> None:
    assert QUICK["budget"] <= 500 and QUICK["test_sessions"] <= 50
