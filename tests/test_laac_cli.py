"""LAAC as a Recommender (scores line up with LAAC.recommend) and `rayrec train laac` through the console
script: a tiny run writes its run directory and exits 0; bad input exits 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rayrec.algorithms.laac import LAACConfig, random_llm_table
from rayrec.algorithms.laac.laac import top_k
from rayrec.algorithms.laac.recommender import LAACRecommender
from rayrec.data import leave_last_out, make_world
from rayrec.data.logged_mdp import user_states, write_logged_mdp

RAYREC = Path(sys.executable).parent / "rayrec"
N = 5
K = 6
WORLD = ["--option", "n_users=40", "--option", "n_items=30", "--option", "n_categories=4"]
WORLD += ["--option", "mean_interactions=10", "--option", "seed=4"]


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    assert RAYREC.exists(), f"{RAYREC} missing: install the package with `pip install -e .` (make does)"
    return subprocess.run([str(RAYREC), *args], capture_output=True, text=True, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 2, shown
    assert "Traceback" not in shown, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    for needle in needles:
        assert needle in lines[0], shown


def _world():
    return make_world(n_users=40, n_items=30, n_categories=4, mean_interactions=10, seed=4).dataset


def _seen(*parts) -> np.ndarray:
    seen = np.zeros((parts[0].n_users, parts[0].n_items), dtype=bool)
    for p in parts:
        seen[p.interactions["user"], p.interactions["item"]] = True
    return seen


def test_recommender_scores_line_up_with_laac_recommend(ray_session, tmp_path) -> None:
    split = leave_last_out(_world())
    train = split.train
    info = write_logged_mdp(train, tmp_path / "eps", history_len=N)
    random_llm_table(train.user_sequences(), train.n_items, K, dataset=info.dataset).save(tmp_path / "pi.npz")
    config = (
        LAACConfig()
        .offline_data(input_=str(tmp_path / "eps"))
        .training(
            llm_table=str(tmp_path / "pi.npz"), K=K, bc_warmstart_steps=1, train_batch_size_per_learner=64
        )
    )
    algo = config.build_algo()
    try:
        for _ in range(3):
            algo.train()
        rec = LAACRecommender.from_algorithm(algo).fit(train)
        users = np.arange(train.n_users)
        seen = _seen(train)
        scores = rec.score(users)
        assert scores.shape == (train.n_users, train.n_items) and scores.dtype == np.float32
        assert np.array_equal(rec.states, user_states(train, N))
        assert np.allclose(scores, algo.actor_logits(user_states(train, N)), atol=1e-6)
        assert np.array_equal(
            top_k(scores, 10, seen), algo.recommend(user_states(train, N), k=10, exclude=seen)
        )
        # For test, the state follows train + valid: exactly the logged MDP's state after both parts.
        rec.observe(split.valid)
        both = train.with_interactions(pd.concat([train.interactions, split.valid.interactions]))
        assert np.array_equal(rec.states, user_states(both, N))
        assert np.allclose(rec.score(users), algo.actor_logits(user_states(both, N)), atol=1e-6)
        assert not np.array_equal(rec.states, user_states(train, N))
    finally:
        algo.stop()


def test_train_laac_console_script_writes_the_run_and_its_best_checkpoint(ray_session, tmp_path) -> None:
    proc = run_cli(
        "train", "laac", "synthetic", *WORLD, "--llm", "random", "--iterations", "4", "--eval-every", "2",
        "--updates-per-iteration", "2", "--bc-warmstart-steps", "2", "--batch-size", "64",
        "--history-len", str(N), "--n-candidates", str(K), "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "laac test" in proc.stdout and "popularity test" in proc.stdout and "NDCG@10" in proc.stdout
    (run,) = tmp_path.glob("laac-synthetic-*")
    for name in ("config.json", "versions.json", "metrics.json", "history.json", "evaluation.json",
                 "pi_llm.npz", "curves_losses.png", "curves_valid.png", "curves_policy.png"):  # fmt: skip
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 0 and config["training"]["bc_warmstart_steps"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 4 and all(np.isfinite(row["critic_loss"]) for row in history)
    valids = {row["iteration"]: row["valid_NDCG@10"] for row in history if "valid_NDCG@10" in row}
    assert sorted(valids) == [2, 4]
    best_it = metrics["laac"]["selection"]["best_iteration"]
    assert valids[best_it] == max(valids.values()) == metrics["laac"]["valid"]["NDCG@10"]
    assert set(metrics) == {"laac", "popularity"} and "test" in metrics["laac"]

    # The checkpoint is the selected model: restored, it scores the recorded validation NDCG.
    from ray.rllib.algorithms.algorithm import Algorithm

    from rayrec.data import default_relevance, split_dataset
    from rayrec.eval import evaluate_ranking

    ds = make_world(n_users=40, n_items=30, n_categories=4, mean_interactions=10, seed=4).dataset
    parts = split_dataset(ds, "leave_last_out")
    restored = Algorithm.from_checkpoint(run / "checkpoint")
    try:
        rec = LAACRecommender.from_algorithm(restored).fit(parts.train)
        ndcg = evaluate_ranking(rec, parts, relevance=default_relevance(ds), on="valid").metrics["NDCG@10"]
    finally:
        restored.stop()
    assert ndcg == pytest.approx(metrics["laac"]["valid"]["NDCG@10"], abs=1e-6)


def test_bad_input_exits_2_with_one_line(tmp_path) -> None:
    base = ["train", "laac", "synthetic", *WORLD, "--llm", "random", "--out", str(tmp_path)]
    assert_user_error(run_cli(*base, "--beta", "-1"), "beta=-1", ">= 0")
    assert_user_error(run_cli(*base, "--encoder", "lstm"), "--encoder", "gru, sasrec")

    # A π_LLM table computed for another dataset (ml-100k) is refused, naming what differs.
    world = _world()
    other = random_llm_table(leave_last_out(world).train.user_sequences(), world.n_items, 10, "ml-100k")
    other.save(tmp_path / "other.npz")
    assert_user_error(
        run_cli(*base, "--llm-table", str(tmp_path / "other.npz")), "dataset: table has 'ml-100k'"
    )

    # Episodes without the expected columns: the file and the missing columns are named.
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "eps"
    bad.mkdir()
    pq.write_table(pa.table({"obs": [[0.0] * 4], "actions": [1]}), bad / "part-0.parquet")
    assert_user_error(run_cli(*base, "--episodes", str(bad)), "lacks columns", "user_id", "part-0.parquet")
    assert not list(tmp_path.glob("laac-*"))  # nothing was written for any of the bad inputs
