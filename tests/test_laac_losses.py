"""LAAC's loss terms on hand-built tensors (docs/design.md §8), and the learner's EMA targets and phases.

No Ray cluster: the loss functions are pure torch, and the learner is built locally with
``LAACConfig.build_learner`` on a few hand-written transitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rayrec.algorithms.laac import LAACConfig, LAACTorchRLModule, random_llm_table
from rayrec.algorithms.laac.laac import observation_space
from rayrec.algorithms.laac.laac_learner import (
    anchor_term,
    bellman_target,
    bellman_term,
    comparator,
    critic_loss,
    gap_term,
)
from rayrec.algorithms.laac.laac_rl_module import Q1, Q1_TARGET_NEXT, Q2_TARGET_NEXT
from rayrec.data import build_dataset
from rayrec.data.logged_mdp import transitions, write_logged_mdp

torch.manual_seed(0)
N_ITEMS, K = 6, 3


def _module(n_items: int = N_ITEMS, history_len: int = 2, encoder: str = "gru") -> LAACTorchRLModule:
    import gymnasium as gym

    return LAACTorchRLModule(
        observation_space=observation_space(n_items, history_len),
        action_space=gym.spaces.Discrete(n_items),
        model_config={"encoder": encoder, "dim": 16},
    )


def _obs(items: list[list[int]], ratings: list[list[float]]) -> torch.Tensor:
    return torch.tensor([i + r for i, r in zip(items, ratings, strict=True)], dtype=torch.float32)


def test_gap_step_raises_llm_favoured_item_relative_to_pis_item() -> None:
    """One critic gradient step on the gap term: f(s, LLM's item) − f(s, π's item) goes up."""
    module = _module()
    obs = _obs([[0, 1], [2, 3]], [[5, 4], [3, 1]])  # (B=2, 2N=4)
    pi = torch.zeros(2, N_ITEMS)
    pi[:, 4] = 1.0  # π puts all mass on item 4
    cands = torch.tensor([[5, 0, 1], [5, 0, 1]])
    probs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # π_LLM favours item 5
    valid = torch.ones(2, K, dtype=torch.bool)
    idx, w = comparator("llm", torch.tensor([0, 2]), cands, probs, valid)
    opt = torch.optim.SGD(module.critic.parameters(), lr=0.1)

    def margin() -> torch.Tensor:
        with torch.no_grad():
            q = module.critic(obs)
            return q[:, 5] - q[:, 4]

    before = margin()
    opt.zero_grad()
    gap_term(module.critic(obs), pi, idx, w).backward()
    opt.step()
    after = margin()
    assert (after > before).all(), (before, after)


def test_gap_detaches_pi() -> None:
    q = torch.randn(2, N_ITEMS, requires_grad=True)
    logits = torch.randn(2, N_ITEMS, requires_grad=True)
    pi = torch.softmax(logits, -1)
    idx, w = torch.tensor([[1], [2]]), torch.ones(2, 1)
    gap_term(q, pi, idx, w).backward()
    assert logits.grad is None
    # d gap / d q = (π − onehot(cmp)) / B
    expected = pi.detach().clone()
    expected[0, 1] -= 1
    expected[1, 2] -= 1
    torch.testing.assert_close(q.grad, expected / 2)


def test_anchor_touches_only_unexplored_candidates_and_stops_gradient_at_logged_action() -> None:
    q = torch.randn(2, N_ITEMS, requires_grad=True)
    actions = torch.tensor([0, 1])
    cands = torch.tensor([[2, 3, 4], [3, 4, 5]])
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    unexplored = torch.tensor([[True, False, True], [False, True, True]])
    anchor = anchor_term(q, actions, cands, probs, unexplored)
    # hand value: mean_s Σ_{a'∈U} π_LLM (f(s,a') − f(s,a))²
    qd = q.detach()
    hand = (
        0.5 * (qd[0, 2] - qd[0, 0]) ** 2
        + 0.2 * (qd[0, 4] - qd[0, 0]) ** 2
        + 0.2 * (qd[1, 4] - qd[1, 1]) ** 2
        + 0.6 * (qd[1, 5] - qd[1, 1]) ** 2
    ) / 2
    torch.testing.assert_close(anchor, hand)
    anchor.backward()
    g = q.grad
    assert g[0, 0] == 0 and g[1, 1] == 0, "the logged action's value gets no gradient from the anchor"
    assert g[0, 3] == 0 and g[1, 3] == 0, "candidates outside U(s) are untouched"
    untouched = [(0, 1), (0, 5), (1, 0), (1, 2)]  # neither candidates nor logged
    assert all(g[s, a] == 0 for s, a in untouched)
    assert g[0, 2] != 0 and g[0, 4] != 0 and g[1, 4] != 0 and g[1, 5] != 0


def test_bellman_target_uses_target_critics_not_online_ones() -> None:
    module = _module()
    obs = _obs([[0, 1], [2, 3]], [[5, 4], [3, 1]])
    nxt = _obs([[1, 2], [3, 4]], [[4, 5], [1, 2]])
    batch = {Columns.OBS: obs, Columns.NEXT_OBS: nxt}
    r, d = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])

    def y() -> torch.Tensor:
        out = module.forward_train(batch)
        pi_next = torch.softmax(out["logits_next"], -1)
        return bellman_target(r, d, 0.9, pi_next, out[Q1_TARGET_NEXT], out[Q2_TARGET_NEXT])

    y0 = y()
    assert y0[1] == 0.0, "done: y = r"
    with torch.no_grad():
        for p in module.critic.parameters():
            p.add_(torch.randn_like(p))
        for p in module.critic_twin.parameters():
            p.add_(torch.randn_like(p))
    torch.testing.assert_close(y(), y0)  # the online critics do not move y
    with torch.no_grad():
        module.critic_target.head.bias.add_(10.0)
        module.critic_twin_target.head.bias.add_(10.0)
    y1 = y()
    torch.testing.assert_close(y1[0], y0[0] + 0.9 * 10.0)  # min_j of two targets both shifted by 10
    assert y1[1] == y0[1]


def test_bellman_residual_term_flows_through_online_next_values() -> None:
    q_sa = torch.tensor([0.5], requires_grad=True)
    q_next = torch.tensor([[1.0, 3.0]], requires_grad=True)
    pi_next = torch.tensor([[0.5, 0.5]])
    y = torch.tensor([1.0])
    loss = bellman_term(q_sa, y, torch.tensor([0.0]), torch.tensor([0.0]), 0.5, pi_next, q_next)
    # ½(0.5 − 1)² + ½(0.5 − 0.5·2)² = 0.125 + 0.125
    torch.testing.assert_close(loss, torch.tensor(0.25))
    loss.backward()
    assert q_next.grad is not None and (q_next.grad != 0).all()


def test_comparator_changes_only_the_gap_term() -> None:
    g = torch.Generator().manual_seed(1)
    q, q_next = torch.randn(3, N_ITEMS, generator=g), torch.randn(3, N_ITEMS, generator=g)
    pi = torch.softmax(torch.randn(3, N_ITEMS, generator=g), -1)
    pi_next = torch.softmax(torch.randn(3, N_ITEMS, generator=g), -1)
    actions = torch.tensor([0, 1, 2])
    cands = torch.tensor([[3, 4, 5], [2, 3, 0], [4, 5, 0]])
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True], [True, True, False], [False, False, False]])
    unexplored = valid.clone()
    y = torch.randn(3, generator=g)
    terms = {}
    for kind in ("llm", "data", "uniform"):
        idx, w = comparator(kind, actions, cands, probs, valid)
        _, terms[kind] = critic_loss(
            q=q, q_next=q_next, y=y, pi=pi, pi_next=pi_next, actions=actions, rewards=torch.ones(3),
            dones=torch.zeros(3), cmp_idx=idx, cmp_w=w, cands=cands, probs=probs, unexplored=unexplored,
            gamma=0.9, beta=2.0, lam=1.0,
        )  # fmt: skip
    for kind in ("data", "uniform"):
        assert terms[kind]["bellman"] == terms["llm"]["bellman"]
        assert terms[kind]["anchor"] == terms["llm"]["anchor"]
        assert terms[kind]["gap"] != terms["llm"]["gap"]
    f_pi = (pi * q).sum(1)
    f_data = q[torch.arange(3), actions]
    torch.testing.assert_close(terms["data"]["gap"], (f_pi - f_data).mean())
    # row 2 has no candidate: llm and uniform fall back to the logged action
    f_llm = torch.stack([(probs[0] * q[0, cands[0]]).sum(), (probs[1] * q[1, cands[1]]).sum(), q[2, 2]])
    torch.testing.assert_close(terms["llm"]["gap"], (f_pi - f_llm).mean())
    f_uni = torch.stack([q[0, [3, 4, 5]].mean(), q[1, [2, 3]].mean(), q[2, 2]])
    torch.testing.assert_close(terms["uniform"]["gap"], (f_pi - f_uni).mean())


def test_large_beta_without_anchor_fits_the_returns_of_a_tiny_chain() -> None:
    """3-item catalog, deterministic chain s0 -a=1,r=0-> s1 -a=2,r=1-> s2 (done), π = the logged
    actions. By hand: Q^π(s1, 2) = 1 and Q^π(s0, 1) = 0 + γ·Q^π(s1, 2) = γ. With β = 1000 and λ = 0
    the critic (tabular, one row per state, EMA target) lands there despite the gap term."""
    gamma, beta, tau = 0.9, 1000.0, 0.05
    n_states, n_items = 3, 3
    f = torch.zeros(n_states, n_items, requires_grad=True)
    f_target = f.detach().clone()
    s, s_next = torch.tensor([0, 1]), torch.tensor([1, 2])
    actions, rewards, dones = torch.tensor([1, 2]), torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0])
    pi_table = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # fixed π per state
    cands, probs = torch.tensor([[0], [0]]), torch.tensor([[1.0], [1.0]])  # π_LLM: item 0
    valid = torch.ones(2, 1, dtype=torch.bool)
    idx, w = comparator("llm", actions, cands, probs, valid)
    opt = torch.optim.Adam([f], lr=0.05)
    for _ in range(1500):
        y = bellman_target(rewards, dones, gamma, pi_table[s_next], f_target[s_next], f_target[s_next])
        loss, _ = critic_loss(
            q=f[s], q_next=f[s_next], y=y, pi=pi_table[s], pi_next=pi_table[s_next], actions=actions,
            rewards=rewards, dones=dones, cmp_idx=idx, cmp_w=w, cands=cands, probs=probs,
            unexplored=torch.zeros_like(valid), gamma=gamma, beta=beta, lam=0.0,
        )  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            f_target.mul_(1 - tau).add_(tau * f.detach())
    assert f[1, 2].item() == pytest.approx(1.0, abs=0.01)
    assert f[0, 1].item() == pytest.approx(gamma, abs=0.01)


# --- the learner: EMA with τ, actor phases ---------------------------------------------------------


@pytest.fixture
def tiny_learner_setup(tmp_path):
    df = pd.DataFrame(
        {
            "user": [0, 0, 0, 1, 1, 1],
            "item": [0, 1, 2, 3, 4, 5],
            "rating": [5, 3, 4, 1, 4, 5],
            "timestamp": [1, 2, 3, 1, 2, 3],
        }
    )
    ds = build_dataset("tiny", df, item_ids=np.arange(8))
    write_logged_mdp(ds, tmp_path / "eps", history_len=2)
    random_llm_table(ds.user_sequences(), ds.n_items, K, dataset="tiny").save(tmp_path / "pi.npz")
    cols = transitions(ds, history_len=2)
    batch = {
        k: torch.as_tensor(np.array(v))
        for k, v in cols.items()
        if k in ("obs", "new_obs", "actions", "rewards", "terminateds", "user_id", "step")
    }
    return tmp_path, batch


def _build_learner(tmp_path, **training):
    config = (
        LAACConfig()
        .offline_data(input_=str(tmp_path / "eps"))
        .training(llm_table=str(tmp_path / "pi.npz"), K=K, embed_dim=8, **training)
    )
    config.validate()
    return config.build_learner()


def _update(learner, batch) -> dict:
    mab = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(dict(batch))}, env_steps=len(batch["actions"]))
    return learner.update(batch=mab, timesteps={"num_env_steps_sampled_lifetime": 1})


def test_learner_moves_targets_by_tau_and_actor_after_warm_start(tiny_learner_setup) -> None:
    tmp_path, batch = tiny_learner_setup
    tau = 0.25
    learner = _build_learner(tmp_path, tau=tau, bc_warmstart_steps=1, actor_update_interval=2)
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    old_target = [p.detach().clone() for p in module.critic_target.parameters()]
    actor_before = [p.detach().clone() for p in module.actor.parameters()]
    _update(learner, batch)  # step 0: BC warm start + critic step
    for p_main, p_target, p_old in zip(
        module.critic.parameters(), module.critic_target.parameters(), old_target, strict=True
    ):
        torch.testing.assert_close(p_target, tau * p_main + (1 - tau) * p_old)
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, module.actor.parameters(), strict=True))
    phases = []
    for _ in range(4):  # steps 1..4 after the warm start: actor on 1, 3 (interval 2), skipped on 2, 4
        before = [p.detach().clone() for p in module.actor.parameters()]
        critic_before = [p.detach().clone() for p in module.critic.parameters()]
        _update(learner, batch)
        moved = any(not torch.equal(a, b) for a, b in zip(before, module.actor.parameters(), strict=True))
        critic_moved = any(
            not torch.equal(a, b) for a, b in zip(critic_before, module.critic.parameters(), strict=True)
        )
        assert critic_moved
        phases.append(moved)
    assert phases == [True, False, True, False]
    assert learner.get_state()["laac_num_updates"] == 5


def test_forward_inference_is_the_actor_and_inference_only_has_no_critics() -> None:
    module = _module()
    obs = _obs([[0, 1]], [[5, 4]])
    out = module.forward_inference({Columns.OBS: obs})
    torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS], module.actor(obs))
    import gymnasium as gym

    light = LAACTorchRLModule(
        observation_space=observation_space(N_ITEMS, 2),
        action_space=gym.spaces.Discrete(N_ITEMS),
        inference_only=True,
        model_config={"encoder": "gru", "dim": 16},
    )
    assert not hasattr(light, "critic") and not hasattr(light, "critic_target")
    light.set_state(module.get_state())
    torch.testing.assert_close(
        light.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS],
        out[Columns.ACTION_DIST_INPUTS],
    )


@pytest.mark.parametrize("encoder", ["gru", "sasrec"])
def test_encoders_give_finite_outputs_for_empty_histories(encoder: str) -> None:
    module = _module(encoder=encoder)
    obs = _obs([[N_ITEMS, N_ITEMS], [N_ITEMS, 3]], [[0, 0], [0, 4]])  # all-pad first state, and one item
    out = module.forward_train({Columns.OBS: obs, Columns.NEXT_OBS: obs})
    assert all(torch.isfinite(v).all() for v in out.values())
    assert out[Q1].shape == (2, N_ITEMS)


def test_llm_lookup_stride_blocks_and_unexplored_user_vs_global() -> None:
    from rayrec.algorithms.laac.laac_learner import LLMLookup
    from rayrec.algorithms.laac.llm_table import LLMTable

    table = LLMTable(
        user_ids=np.array([0, 0, 1]),
        steps=np.array([0, 4, 0]),
        candidates=np.array([[1, 2, -1], [3, 4, 5], [1, 5, 0]]),
        probs=np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], dtype=np.float32),
        fingerprint={"dataset": "x", "model": "m", "prompt_version": "1", "K": 3, "stride": 4},
    )
    # logged: user 0 has items 0, 3; user 1 has item 1
    logged_users, logged_items = np.array([0, 0, 1]), np.array([0, 3, 1])
    args = (table, 3, 4)
    per_user = LLMLookup(*args, "user", logged_users, logged_items, N_ITEMS, torch.device("cpu"))
    glob = LLMLookup(*args, "global", logged_users, logged_items, N_ITEMS, torch.device("cpu"))
    users = torch.tensor([0, 0, 0, 1, 2])
    steps = torch.tensor([3, 5, 13, 9, 0])
    got = per_user(users, steps)
    # u0 step 3 -> row 0, step 5 -> row 1, step 13 -> row 1 (last block, forward-filled); u1 -> row 2
    assert got["cands"][:4].tolist() == [[1, 2, 0], [3, 4, 5], [3, 4, 5], [1, 5, 0]]
    assert got["valid"].tolist()[0] == [True, True, False]
    assert not got["valid"][4].any() and got["probs"][4].sum() == 0  # user 2: no π_LLM row
    # per user: u0 logged 3 -> not unexplored; item 1 is u1's, so for u0 it is unexplored
    assert got["unexplored"][:4].tolist() == [
        [True, True, False],
        [False, True, True],
        [False, True, True],
        [False, True, True],
    ]
    # global: items 0, 1, 3 were logged by someone
    assert glob(users, steps)["unexplored"][:4].tolist() == [
        [False, True, False],
        [False, True, True],
        [False, True, True],
        [False, True, False],
    ]
