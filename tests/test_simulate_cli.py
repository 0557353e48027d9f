"""``rayrec simulator fit`` and ``rayrec simulate`` end to end (real fit, real core).

Happy paths run in-process through typer's runner; user errors go through the installed console
entry point, which is the only place to see the exit code and whether a traceback leaks. Every test
uses a temporary ``RAYREC_HOME`` holding a copy of ml-100k, never the user's cache.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rayrec import assets
from rayrec.cli import app
from rayrec.cli.sim_cmds import fit, simulate
from rayrec.envs.config import SimConfig
from rayrec.envs.feedback import FitConfig
from rayrec.envs.response import ResponseModel

runner = CliRunner()
RAYREC = Path(sys.executable).parent / "rayrec"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RAYREC_HOME with ml-100k copied in, shared by this module's tests."""
    source = assets.ensure("ml-100k")
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("RAYREC_HOME")
    os.environ["RAYREC_HOME"] = str(home)
    try:
        assets.fetch("ml-100k", source=source)
    finally:
        if old is None:
            del os.environ["RAYREC_HOME"]
        else:
            os.environ["RAYREC_HOME"] = old
    return home


@pytest.fixture(autouse=True)
def use_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYREC_HOME", str(home))


@pytest.fixture(scope="module")
def artifact(home: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sim") / "ml-100k-mf"
    os.environ["RAYREC_HOME"] = str(home)  # module fixtures run before the autouse monkeypatch
    try:
        result = runner.invoke(
            app, ["simulator", "fit", "ml-100k", "--out", str(out)], catch_exceptions=False
        )
    finally:
        del os.environ["RAYREC_HOME"]
    assert result.exit_code == 0, result.output
    return out, result.output


def test_fit_prints_held_out_rmse_and_auc_and_saves_the_artifact(artifact):
    out, output = artifact
    model = ResponseModel.load(out)
    assert "rmse" in output and "auc" in output and "explicit" in output and str(out.name) in output
    assert f"{model.report['rmse']:.4f}" in output
    assert model.report["rmse"] <= 0.98
    assert ResponseModel.read_meta(out)["cache_key"]["fit"]["dim"] == 32


@pytest.mark.parametrize(
    ("policy", "quit_model"),
    [("popularity", "category_window"), ("random", "temper"), ("greedy", "fatigue")],
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


def test_simulate_passes_quit_parameters_and_sim_settings_through(artifact):
    out, _ = artifact
    args = ["simulate", "--policy", "random", "--episodes", "50", "--response", str(out)]
    args += ["--max-turn", "7", "--response-sampling", "bernoulli", "--reward-noise", "0.1"]
    result = runner.invoke(app, [*args, "--quit-param", "window=1", "--quit-param", "threshold=30"])
    assert result.exit_code == 0, result.output
    assert "max_turn: 50" in result.output  # nobody can quit, so every session is truncated


def test_every_sim_and_fit_setting_has_a_flag():
    sim_flags = set(inspect.signature(simulate).parameters)
    renamed = {"quit_params": "quit_param"}
    assert {renamed.get(f.name, f.name) for f in fields(SimConfig)} <= sim_flags
    fit_renamed = {"max_epochs": "epochs"}
    fit_fields = {fit_renamed.get(f.name, f.name) for f in fields(FitConfig)}
    assert fit_fields <= set(inspect.signature(fit).parameters)
    sim_fit = {"seed": "fit_seed", "batch_size": "fit_batch_size", "max_epochs": "epochs"}
    assert {sim_fit.get(f.name, f.name) for f in fields(FitConfig)} <= sim_flags


def test_fit_with_other_settings_does_not_replace_the_default_model(home):
    fitted = runner.invoke(app, ["simulator", "fit", "ml-100k", "--dim", "8", "--epochs", "3"])
    assert fitted.exit_code == 0, fitted.output
    dim8 = ResponseModel.read_meta(fitted.output.split("saved to ")[1].split()[0].strip())
    assert dim8["cache_key"]["fit"]["dim"] == 8
    ran = runner.invoke(app, ["simulate", "--policy", "random", "--episodes", "10"])
    assert ran.exit_code == 0, ran.output
    used = Path("".join(ran.output.split("response model ")[1].split()))
    assert ResponseModel.read_meta(used)["cache_key"]["fit"]["dim"] == 32
    assert len(list((home / "simulators").iterdir())) == 2


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAYREC_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(RAYREC), *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--policy", "oracle"], "unknown policy"),
        (["simulate", "--quit-model", "boredom"], "unknown quit model"),
        (["simulate", "--quit-param", "window"], "key=value"),
        (["simulate", "--kind", "svd"], "kind must be one of"),
        (["simulator", "fit", "ml-100k", "--feedback", "stars"], "feedback must be"),
    ],
)
def test_user_errors_exit_2_without_traceback(tmp_path, args, message):
    empty = tmp_path / "home"  # nothing cached: each error must come before any fetch or fit
    proc = _cli(empty, *args, "--episodes", "5") if args[0] == "simulate" else _cli(empty, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (empty / "simulators").exists() and not (empty / "ml-100k").exists()


def test_a_dataset_without_categories_fails_before_fitting(tmp_path):
    csv = tmp_path / "log.csv"
    pd.DataFrame({"user": [1, 1, 2, 2], "item": ["a", "b", "a", "c"]}).to_csv(csv, index=False)
    home = tmp_path / "home"
    proc = _cli(home, "simulator", "fit", "csv", "--path", str(csv))
    assert proc.returncode == 2 and "no item categories" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (home / "simulators").exists()
