"""Discrete CQL: loss terms on hand-built tensors, config checks (no Ray), and training through
Algorithm.train() from parquet episodes with EMA targets, a Recommender and a checkpoint round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rayrec.algorithms.baselines.cql import DiscreteCQLConfig
from rayrec.algorithms.baselines.cql.cql_learner import conservative_term, cql_loss, td_target
from rayrec.algorithms.offline_recommender import OfflineRLRecommender
from rayrec.data import leave_last_out, make_world
from rayrec.data.logged_mdp import write_logged_mdp
from rayrec.errors import ConfigError, DataError

N = 5

# --- loss terms -----------------------------------------------------------------------------------


def test_conservative_term_lowers_out_of_data_actions_relative_to_logged_ones() -> None:
    """Gradient steps on the CQL(H) term alone, from equal Q values: the logged action of each state
    rises, every other action falls, and the gap grows with each step."""
    actions = torch.tensor([0, 3, 3])  # state 0 logs item 0, states 1 and 2 log item 3
    q = torch.zeros(3, 5, requires_grad=True)
    opt = torch.optim.SGD([q], lr=0.5)
    gaps = []
    for _ in range(20):
        opt.zero_grad()
        conservative_term(q, actions).backward()
        opt.step()
        with torch.no_grad():
            logged = q.gather(1, actions[:, None]).squeeze(1)
            others = torch.ones_like(q, dtype=torch.bool).scatter(1, actions[:, None], False)
            gaps.append((logged - q[others].reshape(3, 4).max(1).values).min().item())
    assert gaps[0] > 0 and all(b > a for a, b in zip(gaps, gaps[1:], strict=False))
    others = torch.ones_like(q, dtype=torch.bool).scatter(1, actions[:, None], False)
    assert (q[others] < 0).all() and (q.gather(1, actions[:, None]) > 0).all()


def test_conservative_term_is_zero_only_for_a_certain_q_and_positive_for_flat_q() -> None:
    actions = torch.tensor([1])
    flat = torch.zeros(1, 4)
    assert conservative_term(flat, actions).item() == pytest.approx(math.log(4))
    peaked = torch.tensor([[-50.0, 50.0, -50.0, -50.0]])
    assert conservative_term(peaked, actions).item() == pytest.approx(0.0, abs=1e-6)


def test_alpha_zero_leaves_out_of_data_actions_untouched() -> None:
    """With α_cql = 0 only the logged action's Q gets a gradient (plain TD); with α > 0 all do."""
    actions = torch.tensor([2, 0])
    y = torch.tensor([1.0, 0.5])
    for alpha, touched in ((0.0, False), (1.0, True)):
        q = torch.zeros(2, 4, requires_grad=True)
        loss, terms = cql_loss(q, actions, y, alpha)
        loss.backward()
        others = torch.ones(2, 4, dtype=torch.bool).scatter(1, actions[:, None], False)
        assert bool((q.grad[others] != 0).any()) is touched
        assert terms["td"].item() == pytest.approx(0.5 * (1.0 + 0.25) / 2)


def test_td_target_takes_values_from_the_target_nets_at_the_online_argmax() -> None:
    rewards = torch.tensor([1.0, 0.0, 1.0])
    dones = torch.tensor([0.0, 0.0, 1.0])
    # online nets prefer item 2, 0, 1 in the three states (summed over heads)
    q1_next = torch.tensor([[0.0, 1.0, 3.0], [5.0, 0.0, 0.0], [0.0, 9.0, 0.0]])
    q2_next = torch.tensor([[0.0, 2.0, 0.5], [1.0, 0.0, 0.0], [0.0, 9.0, 0.0]])
    # targets disagree with the online nets: their own argmax is item 0 everywhere
    q1_t = torch.tensor([[10.0, 0.0, 2.0], [4.0, 0.0, 0.0], [10.0, 3.0, 0.0]])
    q2_t = torch.tensor([[10.0, 0.0, 1.5], [6.0, 0.0, 0.0], [10.0, 3.0, 0.0]])
    y = td_target(rewards, dones, 0.9, q1_next, q2_next, q1_t, q2_t)
    # state 0: online argmax 2 (3.5 > 3), min target 1.5; state 1: argmax 0, min 4; state 2: done
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * 1.5, 0.9 * 4.0, 1.0]))
    assert not y.requires_grad
    # the online nets' values never enter y, only their choice does
    y2 = td_target(rewards, dones, 0.9, q1_next * 100, q2_next * 100, q1_t, q2_t)
    assert torch.equal(y, y2)


# --- config checks (no Ray) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cql")
    ds = make_world(n_users=80, n_items=60, n_categories=5, mean_interactions=12, seed=3).dataset
    split = leave_last_out(ds)
    info = write_logged_mdp(split.train, root / "eps", history_len=N, rows_per_file=400)
    return root, split, info


def _config(root, **training) -> DiscreteCQLConfig:
    return (
        DiscreteCQLConfig()
        .offline_data(input_=str(root / "eps"))
        .training(**{"train_batch_size_per_learner": 64, **training})
    )


@pytest.mark.parametrize(
    ("knob", "value"),
    [("cql_alpha", -1.0), ("gamma", 1.0), ("tau", 0.0), ("tau", 1.5), ("lr", 0.0), ("encoder", "lstm"),
     ("embed_dim", 0), ("train_batch_size_per_learner", 0)],
)  # fmt: skip
def test_out_of_range_knob_is_a_config_error_naming_it(episodes, knob, value) -> None:
    root, _, _ = episodes
    with pytest.raises(ConfigError, match=rf"discrete CQL knob {knob}="):
        _config(root, **{knob: value}).validate()


def test_spaces_come_from_the_episodes_and_bad_input_is_refused(episodes, tmp_path) -> None:
    import pyarrow.parquet as pq

    root, _, info = episodes
    config = _config(root)
    config.validate()
    assert config.action_space.n == info.n_items and config.observation_space.shape == (2 * N,)
    with pytest.raises(ConfigError, match="is offline"):
        DiscreteCQLConfig().validate()
    bad = tmp_path / "eps" / "part.parquet"
    bad.parent.mkdir()
    pq.write_table(pq.read_table(root / "eps").drop_columns(["new_obs"]), bad)
    with pytest.raises(DataError, match="new_obs"):
        DiscreteCQLConfig().offline_data(input_=str(bad.parent)).validate()


# --- training on a local Ray ----------------------------------------------------------------------


def test_trains_from_parquet_with_ema_targets_and_restores_identical_scores(
    ray_session, episodes, tmp_path
) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID

    root, split, info = episodes
    tau = 0.5
    algo = _config(root, tau=tau, cql_alpha=1.0).build_algo()

    def weights() -> dict[str, np.ndarray]:
        state = algo.learner_group.get_state()[COMPONENT_LEARNER][COMPONENT_RL_MODULE][DEFAULT_MODULE_ID]
        return {k: np.array(v, copy=True) for k, v in state.items()}

    try:
        for _ in range(3):
            result = algo.train()
        before = weights()
        result = algo.train()  # one minibatch: the target moves once, by tau toward the new online net
        after = weights()
        stats = result["learners"]["default_policy"]
        for key in ("loss", "td_1", "td_2", "cql_1", "cql_2", "q_logged_mean", "q_mean", "td_target_mean"):
            assert math.isfinite(stats[key]), key
        assert stats["num_updates"] == 4 and stats["cql_1"] > 0
        targets = [k for k in after if k.startswith("q_target.")]
        assert targets
        for k in targets:
            online = k.replace("q_target.", "q.", 1)
            assert not np.allclose(after[online], before[online]), online  # the online net learned
            expected = (1 - tau) * before[k] + tau * after[online]
            np.testing.assert_allclose(after[k], expected, rtol=1e-5, atol=1e-6)

        rec = OfflineRLRecommender.from_algorithm(algo, split.train, name="cql")
        users = np.arange(split.train.n_users)
        scores = rec.score(users)
        assert scores.shape == (split.train.n_users, info.n_items) and np.isfinite(scores).all()
        after_valid = rec.observe(split.valid).score(users)
        assert not np.array_equal(after_valid, scores)  # the histories moved on by the valid item
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(tmp_path / "ckpt")
    try:
        again = OfflineRLRecommender.from_algorithm(restored, split.train).score(users)
        assert np.array_equal(again, scores)
        assert restored.learner_group.get_state()[COMPONENT_LEARNER]["cql_num_updates"] == 4
    finally:
        restored.stop()
