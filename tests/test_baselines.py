"""Offline baselines through the real CLI: the demo table, the run directory, sane orderings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from rayrec.algorithms.baselines import PopularityRecommender, RandomRecommender
from rayrec.algorithms.evaluation import evaluate_ranking
from rayrec.cli import app
from rayrec.data import leave_last_out, load_dataset


def test_popularity_beats_random_on_accuracy_and_loses_on_diversity() -> None:
    split = leave_last_out(load_dataset("ml-100k"))
    pop = evaluate_ranking(PopularityRecommender().fit(split.train), split, k=10)
    rnd = evaluate_ranking(RandomRecommender(seed=0).fit(split.train), split, k=10)
    assert pop["HR@10"] > 3 * rnd["HR@10"]
    assert pop["NDCG@10"] > rnd["NDCG@10"]
    assert rnd["coverage"] > 10 * pop["coverage"]
    assert rnd["novelty"] > pop["novelty"]
    assert pop["gini"] > rnd["gini"]


def test_seen_items_are_never_recommended() -> None:
    split = leave_last_out(load_dataset("ml-100k"))
    rec = PopularityRecommender().fit(split.train)
    # Rank everything for user 0 by hand through the same exclusion the evaluator uses.
    from rayrec.eval import exclude_seen, top_k

    seen = split.train.user_sequences()[0]
    top = top_k(exclude_seen(np.array(rec.score(np.array([0])), copy=True), [seen]), 50)
    assert not set(top[0]) & set(seen)


def test_evaluate_baselines_cli_writes_run_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate-baselines", "ml-100k", "--out", str(tmp_path), "--k", "5"])
    assert result.exit_code == 0, result.output
    assert "HR@5" in result.output and "popularity" in result.output
    (run,) = list(tmp_path.iterdir())
    assert {p.name for p in run.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.json",
        "baselines.png",
    }
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"popularity", "random"}
    assert 0 <= metrics["popularity"]["HR@5"] <= 1
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 0 and config["k"] == 5
    assert json.loads((run / "versions.json").read_text())["ray"] == "2.60.0"


def test_cli_reports_user_errors_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate-baselines", "ml-100k", "--split", "bogus"])
    assert result.exit_code != 0
    assert "leave-last-out or temporal" in str(result.exception)


def test_data_cli_passes_loader_options_and_rejects_unknown_ones() -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["data", "info", "synthetic", "--option", "n_users=300", "--option", "n_items=80"]
    )
    assert ok.exit_code == 0, ok.output
    assert "300" in ok.output and "80" in ok.output
    bad = runner.invoke(app, ["data", "info", "synthetic", "--option", "bogus=1"])
    assert "does not take option(s) ['bogus']" in str(bad.exception)
