"""``rayrec simulator fit`` and ``rayrec simulate`` end to end (typer's runner, real fit, real core).

Artifacts go to a temporary directory (``--out`` / ``--response``) so the user's cache is untouched.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rayrec.cli import app
from rayrec.envs.response import ResponseModel
from rayrec.errors import ConfigError

runner = CliRunner()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ml-100k-mf"
    result = runner.invoke(app, ["simulator", "fit", "ml-100k", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_fit_prints_held_out_rmse_and_auc_and_saves_the_artifact(artifact):
    out, output = artifact
    model = ResponseModel.load(out)
    assert "rmse" in output and "auc" in output and str(out.name) in output
    assert f"{model.report['rmse']:.4f}" in output
    assert model.report["rmse"] <= 0.98


@pytest.mark.parametrize(
    ("policy", "quit_model"),
    [("popularity", "category_window"), ("round-robin", "temper"), ("greedy", "fatigue")],
)
def test_simulate_prints_long_term_metrics_with_intervals(artifact, policy, quit_model):
    out, _ = artifact
    args = ["simulate", "ml-100k", "--policy", policy, "--quit-model", quit_model]
    args += ["--episodes", "200", "--response", str(out), "--seed", "1"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for metric in ("R_tra", "R_each", "Len", "cat_coverage", "cat_entropy", "MCD", "ci95"):
        assert metric in result.output
    assert "sessions ended by" in result.output


def test_simulate_passes_quit_parameters_through(artifact):
    out, _ = artifact
    args = ["simulate", "--policy", "random", "--episodes", "50", "--response", str(out)]
    result = runner.invoke(app, [*args, "--quit-param", "window=1", "--quit-param", "threshold=30"])
    assert result.exit_code == 0, result.output
    assert "max_turn: 50" in result.output  # nobody can quit, so every session is truncated


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "oracle"], "unknown policy"),
        (["--quit-model", "boredom"], "unknown quit model"),
        (["--quit-param", "window"], "key=value"),
        (["--kind", "svd"], "--kind must be one of"),
    ],
)
def test_bad_options_raise_config_errors(artifact, extra, message):
    out, _ = artifact
    result = runner.invoke(app, ["simulate", "--episodes", "5", "--response", str(out), *extra])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)
