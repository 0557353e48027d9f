"""LAAC end to end: config checks (no Ray), Algorithm.train() from parquet episodes on a local Ray,
checkpoint round trip, and two CPU learners (DDP)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rayrec.algorithms.laac import LAACConfig, random_llm_table
from rayrec.algorithms.laac.llm_table import load_llm_table
from rayrec.data import leave_last_out, make_world
from rayrec.data.logged_mdp import user_states, write_logged_mdp
from rayrec.errors import ConfigError, DataError

K = 8
N = 5


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """A small synthetic world's train split as episodes, with a random π_LLM table."""
    root = tmp_path_factory.mktemp("laac")
    ds = make_world(n_users=80, n_items=60, n_categories=5, mean_interactions=12, seed=3).dataset
    split = leave_last_out(ds)
    info = write_logged_mdp(split.train, root / "eps", history_len=N, rows_per_file=400)
    table = random_llm_table(split.train.user_sequences(), ds.n_items, K, dataset=info.dataset, seed=0)
    table.save(root / "pi.npz")
    return root, split, info


def _config(root, **training) -> LAACConfig:
    return (
        LAACConfig()
        .offline_data(input_=str(root / "eps"))
        .training(
            **{"llm_table": str(root / "pi.npz"), "K": K, "train_batch_size_per_learner": 64, **training}
        )
    )


# --- bad input, caught at config time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("beta", -1.0),
        ("lam", -0.1),
        ("gamma", 1.0),
        ("tau", 0.0),
        ("lr_actor", 0.0),
        ("lr_critic", -1e-3),
        ("alpha", -0.5),
        ("actor_update_interval", 0),
        ("bc_warmstart_steps", -1),
        ("encoder", "lstm"),
        ("K", 0),
        ("llm_stride", -2),
        ("unexplored", "nobody"),
        ("comparator", "oracle"),
    ],
)
def test_out_of_range_knob_is_a_config_error_naming_it(episodes, knob, value) -> None:
    root, _, _ = episodes
    with pytest.raises(ConfigError, match=rf"LAAC knob {knob}="):
        _config(root, **{knob: value}).validate()


def test_defaults_validate(episodes) -> None:
    root, _, info = episodes
    config = _config(root)
    config.validate()
    assert config.history_len == N and config.action_space.n == info.n_items


def test_episodes_without_expected_columns_are_refused(episodes, tmp_path) -> None:
    import pyarrow.parquet as pq

    root, _, _ = episodes
    bad = tmp_path / "eps" / "part.parquet"
    bad.parent.mkdir()
    table = pq.read_table(root / "eps").drop_columns(["user_id", "rewards"])
    pq.write_table(table, bad)
    config = _config(root)
    config.input_ = str(bad.parent)
    with pytest.raises(DataError) as e:
        config.validate()
    assert str(bad) in str(e.value) and "user_id" in str(e.value) and "rewards" in str(e.value)
    assert isinstance(e.value, Exception) and "input_read_schema" in str(e.value)


def test_pi_llm_table_from_another_dataset_model_or_k_is_refused(episodes, tmp_path) -> None:
    root, split, _ = episodes
    seqs = split.train.user_sequences()
    other = random_llm_table(seqs, split.train.n_items, K, dataset="ml-100k")
    other.save(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match=r"dataset: table has 'ml-100k'"):
        _config(root, llm_table=tmp_path / "other.npz").validate()
    with pytest.raises(ConfigError, match=r"model: table has 'random', run wants 'smollm2-135m'"):
        _config(root, llm_model="smollm2-135m").validate()
    with pytest.raises(ConfigError, match=r"K: table has 8, run wants 4"):
        _config(root, K=4).validate()
    with pytest.raises(ConfigError, match="does not exist"):
        _config(root, llm_table=tmp_path / "missing.npz").validate()
    with pytest.raises(ConfigError, match="needs a π_LLM table"):
        LAACConfig().offline_data(input_=str(root / "eps")).validate()
    broken = load_llm_table(root / "pi.npz")
    broken.probs = broken.probs * 2
    broken.save(tmp_path / "broken.npz")
    with pytest.raises(DataError, match="sum to 1"):
        _config(root, llm_table=tmp_path / "broken.npz").validate()


# --- training on a local Ray ----------------------------------------------------------------------


def test_trains_from_parquet_and_checkpoint_restores_identical_recommendations(
    ray_session, episodes, tmp_path
) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm

    root, split, _ = episodes
    algo = _config(root, bc_warmstart_steps=2, actor_update_interval=2).build_algo()
    try:
        for _ in range(4):
            result = algo.train()
        stats = result["learners"]["default_policy"]
        for key in (
            "gap_1", "gap_2", "bellman_1", "bellman_2", "anchor_1", "anchor_2", "critic_loss", "actor_loss",
            "bc_loss", "f_logged_mean", "f_llm_only_mean", "pi_mass_llm", "pi_mass_tail", "entropy",
        ):  # fmt: skip
            assert math.isfinite(stats[key]), key
        assert stats["num_updates"] == 4
        assert 0 < stats["pi_mass_llm"] < 1 and 0 < stats["pi_mass_tail"] < 1
        assert 0 < stats["entropy"] <= math.log(split.train.n_items) + 1e-6
        obs = user_states(split.train, N)
        seen = np.zeros((split.train.n_users, split.train.n_items), dtype=bool)
        seen[split.train.interactions["user"], split.train.interactions["item"]] = True
        recs = algo.recommend(obs, k=10, exclude=seen)
        assert recs.shape == (split.train.n_users, 10)
        assert not seen[np.arange(len(recs))[:, None], recs].any()
        logits = algo.actor_logits(obs)
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(tmp_path / "ckpt")
    try:
        assert np.array_equal(restored.actor_logits(obs), logits)
        assert np.array_equal(restored.recommend(obs, k=10, exclude=seen), recs)
        assert restored.learner_group.get_state()["learner"]["laac_num_updates"] == 4
    finally:
        restored.stop()


@pytest.mark.slow
def test_two_cpu_learners_train(ray_session, episodes) -> None:
    """num_learners=2: remote learners with torch DDP (gloo), the data split between them."""
    root, _, _ = episodes
    config = _config(root, encoder="sasrec", bc_warmstart_steps=1, actor_update_interval=2).learners(
        num_learners=2, num_cpus_per_learner=1
    )
    algo = config.build_algo()
    try:
        for _ in range(3):
            result = algo.train()
        stats = result["learners"]["default_policy"]
        assert math.isfinite(stats["critic_loss"]) and stats["num_updates"] == 3
    finally:
        algo.stop()
