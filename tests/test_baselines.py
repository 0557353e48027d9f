"""Offline baselines: sane orderings, one popularity/random implementation shared with the simulator,
and ``rayrec evaluate-baselines`` through the installed console script (exit codes, no tracebacks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rayrec.algorithms.baselines import PopularityRecommender, RandomRecommender, run_baselines
from rayrec.cli import app
from rayrec.data import leave_last_out, load_dataset
from rayrec.envs.policies import PopularityPolicy, RandomPolicy
from rayrec.eval import evaluate_ranking, exclude_seen, top_k
from rayrec.popularity import popularity_scores

RAYREC = Path(sys.executable).parent / "rayrec"  # the console script `pip install` put beside python


def rayrec(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(RAYREC), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_popularity_beats_random_on_accuracy_and_loses_on_diversity() -> None:
    split = leave_last_out(load_dataset("ml-100k"))
    pop = evaluate_ranking(PopularityRecommender().fit(split.train), split, relevance="all").metrics
    rnd = evaluate_ranking(RandomRecommender(seed=0).fit(split.train), split, relevance="all").metrics
    assert pop["HR@10"] > 3 * rnd["HR@10"]
    assert pop["NDCG@10"] > rnd["NDCG@10"]
    assert rnd["coverage"] > 10 * pop["coverage"]
    assert rnd["novelty"] > pop["novelty"]
    assert pop["gini"] > rnd["gini"]


def test_seen_items_are_never_recommended() -> None:
    split = leave_last_out(load_dataset("ml-100k"))
    rec = PopularityRecommender().fit(split.train)
    seen = split.train.user_sequences()[0]
    top = top_k(exclude_seen(np.array(rec.score(np.array([0])), copy=True), [seen]), 50)
    assert not set(top[0]) & set(seen)


def test_offline_baselines_and_simulator_policies_score_alike() -> None:
    """One implementation: the policies rank like the offline recommenders (up to tie order)."""
    train = leave_last_out(load_dataset("ml-100k")).train
    pop = train.item_popularity()
    offline = PopularityRecommender().fit(train).score(np.array([0]))[0]
    policy = PopularityPolicy(train.categories, pop, seed=3).scores({}, np.array([0]))[0]
    np.testing.assert_array_equal(offline, pop.astype(np.float32))
    np.testing.assert_array_equal(policy, popularity_scores(pop, np.random.default_rng(3)))
    # a higher count always scores higher in both; only equal counts may be ordered differently
    higher = pop[:, None] > pop[None, :]
    assert (policy[:, None] > policy[None, :])[higher].all()
    assert len(np.unique(policy)) == len(pop)  # the policy never ties
    rnd = RandomRecommender(seed=5).fit(train).score(np.arange(4))
    rnd_policy = RandomPolicy(train.categories, seed=5).scores({}, np.arange(4))
    np.testing.assert_array_equal(rnd, rnd_policy)


def test_run_baselines_records_relevance_and_users(tmp_path: Path) -> None:
    lines: list[str] = []
    results, run = run_baselines("ml-100k", out=tmp_path, k=5, log=lines.append)
    assert set(results) == {"popularity", "random"}
    assert lines == [
        "relevance: all (dataset default); 943 of 943 ranked users have a relevant test item and the "
        "accuracy metrics average over them"
    ]
    config = json.loads((run.path / "config.json").read_text())
    assert config["relevance"] == "all" and config["relevance_source"] == "dataset default"
    info = json.loads((run.path / "evaluation.json").read_text())
    assert info["relevance"] == "all" and info["users_evaluated"] == info["users_ranked"] == 943


KUAIRAND_HEADER = "user_id,video_id,date,hourmin,time_ms,is_click,is_like,play_time_ms,duration_ms,tab"
KUAIRAND_ITEMS = "video_id,video_type,tag\n" + "".join(f"{v},NORMAL,{v % 3}\n" for v in range(1, 9))


def write_kuairand(d: Path) -> Path:
    """12 users x 4 exposures; every user's last one (the test row) is a click only for even users."""
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for u in range(12):
        for t in range(4):
            video = (u + t) % 8 + 1
            click = int(t < 3 or u % 2 == 0)
            rows.append(f"{u},{video},20220408,1000,{1_649_400_000_000 + 1000 * (u * 4 + t)},{click},0,1,9,1")
    (d / "log_standard_4_08_to_4_21_pure.csv").write_text("\n".join([KUAIRAND_HEADER, *rows]) + "\n")
    (d / "video_features_basic_pure.csv").write_text(KUAIRAND_ITEMS)
    return d


def test_evaluate_baselines_cli_on_clicks_uses_click_relevance(tmp_path: Path) -> None:
    data = write_kuairand(tmp_path / "kuairand")
    out = tmp_path / "runs"
    done = rayrec(
        "evaluate-baselines", "kuairand", "--path", str(data), "--k", "2", "--out", str(out), cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "relevance: rating>=1 (dataset default); 6 of 12 ranked users" in " ".join(done.stdout.split())
    (run,) = list(out.iterdir())
    assert {p.name for p in run.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.json",
        "evaluation.json",
        "baselines.png",
    }
    assert set(json.loads((run / "metrics.json").read_text())) == {"popularity", "random"}
    info = json.loads((run / "evaluation.json").read_text())
    assert (info["users_ranked"], info["users_evaluated"], info["relevance"]) == (12, 6, "rating>=1")
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 0 and config["k"] == 2 and config["split_options"] == {}
    assert json.loads((run / "versions.json").read_text())["ray"] == "2.60.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "bogus"], "--split must be one of leave_last_out, temporal"),
        (["--relevance", "clicks"], "relevance rule 'clicks' not understood"),
        (["--option", "bogus=1"], "does not take option(s) ['bogus']"),
        (["--split", "temporal", "--n-test", "2"], "--n-test do(es) not apply to the temporal split"),
        (["--n-test", "0"], "n_test >= 1"),
        (["--head-fraction", "1.5"], "head_fraction=1.5 must lie in [0, 1]"),
        (["--k", "5000"], "k=5000 must be between 1 and the number of items"),
    ],
)
def test_evaluate_baselines_user_errors_exit_2_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = rayrec("evaluate-baselines", "ml-100k", "--out", str(tmp_path / "runs"), *args, cwd=tmp_path)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, text
    assert message in text
    assert "Traceback" not in text
    assert not (tmp_path / "runs").exists()  # nothing recorded for a run that failed


def test_evaluate_baselines_reaches_loader_and_split_options(tmp_path: Path) -> None:
    lines: list[str] = []
    results, run = run_baselines(
        "synthetic",
        split="temporal",
        out=tmp_path,
        k=5,
        options={"n_users": 120, "n_items": 60, "seed": 1},
        split_options={"test_frac": 0.2},
        relevance="rating>=4",
        log=lines.append,
    )
    config = json.loads((run.path / "config.json").read_text())
    assert config["options"] == {"n_users": 120, "n_items": 60, "seed": 1}
    assert config["split_options"] == {"test_frac": 0.2} and config["relevance_source"] == "given"
    assert lines[0].startswith("relevance: rating>=4 (given)")
    assert 0.0 <= results["popularity"]["HR@5"] <= 1.0


def test_data_cli_passes_loader_options_and_rejects_unknown_ones() -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["data", "info", "synthetic", "--option", "n_users=300", "--option", "n_items=80"]
    )
    assert ok.exit_code == 0, ok.output
    assert "300" in ok.output and "80" in ok.output
    bad = runner.invoke(app, ["data", "info", "synthetic", "--option", "bogus=1"])
    assert "does not take option(s) ['bogus']" in str(bad.exception)
