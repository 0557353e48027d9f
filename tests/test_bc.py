"""BC: RLlib's own BC with LAAC's actor network, trained through Algorithm.train() from parquet episodes
(via OfflineRLRecommender.fit), learning a deterministic next-item rule, and a checkpoint round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rayrec.algorithms.baselines.bc import SequenceBCTorchRLModule, bc_config
from rayrec.algorithms.laac import LAACConfig, random_llm_table
from rayrec.algorithms.offline_recommender import OfflineRLRecommender
from rayrec.data import build_dataset, leave_last_out
from rayrec.data.logged_mdp import write_logged_mdp
from rayrec.errors import ConfigError
from rayrec.eval import evaluate_ranking

N_ITEMS, N_USERS, LENGTH, N = 40, 60, 12, 3


def cycle_dataset():
    """User u sees items (3u + t) mod 40 for t = 0..11: the next item is always the last one + 1."""
    users = np.repeat(np.arange(N_USERS), LENGTH)
    t = np.tile(np.arange(LENGTH), N_USERS)
    items = (3 * users + t) % N_ITEMS
    df = pd.DataFrame({"user": users, "item": items, "rating": 5.0, "timestamp": t})
    return build_dataset("cycle", df, item_ids=np.arange(N_ITEMS))


def test_bad_knobs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="encoder"):
        bc_config(encoder="lstm")
    with pytest.raises(ConfigError, match="lr > 0"):
        bc_config(lr=0.0)


def test_bc_module_is_laacs_actor_network(tmp_path) -> None:
    """Same encoder and head as LAAC's actor, so bench/laac.py compares equal networks."""
    ds = cycle_dataset()
    write_logged_mdp(leave_last_out(ds).train, tmp_path / "eps", history_len=N)
    table = random_llm_table(leave_last_out(ds).train.user_sequences(), N_ITEMS, 4, dataset="cycle")
    table.save(tmp_path / "pi.npz")
    for encoder in ("gru", "sasrec"):
        bc = bc_config(tmp_path / "eps", encoder=encoder).get_rl_module_spec().build()
        laac = (
            LAACConfig()
            .offline_data(input_=str(tmp_path / "eps"))
            .training(encoder=encoder, llm_table=str(tmp_path / "pi.npz"), K=4)
            .get_rl_module_spec(inference_only=True)
            .build()
        )
        assert isinstance(bc, SequenceBCTorchRLModule)
        shapes = {k: tuple(v.shape) for k, v in bc.actor.state_dict().items()}
        assert shapes == {k: tuple(v.shape) for k, v in laac.actor.state_dict().items()}


def test_bc_learns_the_logged_next_item_and_restores_identical_scores(ray_session, tmp_path) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm

    split = leave_last_out(cycle_dataset())
    rec = OfflineRLRecommender(
        bc_config(lr=3e-3, train_batch_size_per_learner=128).debugging(seed=0),
        iterations=150,
        history_len=N,
        name="bc",
        checkpoint=tmp_path / "ckpt",
    ).fit(split.train)
    losses = [r["learners"]["default_policy"]["policy_loss"] for r in rec.results]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < 0.5 * losses[0]
    users = np.arange(N_USERS)
    scores = rec.score(users)
    assert scores.shape == (N_USERS, N_ITEMS)
    hr = evaluate_ranking(rec, split, relevance="all", k=10, on="valid").metrics["HR@10"]
    # random: 10 of the 30 unseen items, HR@10 = 1/3
    assert hr >= 0.9, hr
    restored = Algorithm.from_checkpoint(tmp_path / "ckpt")
    try:
        again = OfflineRLRecommender.from_algorithm(restored, split.train, name="bc").score(users)
        assert np.array_equal(again, scores)
    finally:
        restored.stop()
    # after observing the valid item, the test item (one further on) is predicted as well
    hr_test = evaluate_ranking(rec.observe(split.valid), split, relevance="all", k=10).metrics["HR@10"]
    assert hr_test >= 0.9, hr_test
