"""LERLTorchRLModule: the category mask as an item-logit bias (soft −κ, hard −∞), encoders, PL slates."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rayrec.algorithms.lerl.lerl_rl_module import LERLTorchRLModule, plackett_luce

N_ITEMS, N_CATS, H = 12, 4, 5


def _categories() -> np.ndarray:
    cats = np.zeros((N_ITEMS, N_CATS), dtype=np.int8)
    cats[np.arange(N_ITEMS), np.arange(N_ITEMS) % N_CATS] = 1
    cats[0, 1] = 1  # item 0 is in categories 0 and 1
    return cats


def _module(slate_size: int = 1, **model: object) -> LERLTorchRLModule:
    obs_space = gym.spaces.Dict(
        {
            "history_items": gym.spaces.Box(0, N_ITEMS, (H,), np.int64),
            "history_rewards": gym.spaces.Box(0.0, 1.0, (H,), np.float32),
            "step": gym.spaces.Box(0, 30, (1,), np.int64),
            "category_mask": gym.spaces.MultiBinary(N_CATS),
            "category_shown": gym.spaces.Box(0.0, 30.0, (N_CATS,), np.float32),
            "category_reward": gym.spaces.Box(0.0, 1.0, (N_CATS,), np.float32),
        }
    )
    action = (
        gym.spaces.Discrete(N_ITEMS) if slate_size == 1 else gym.spaces.MultiDiscrete([N_ITEMS] * slate_size)
    )
    config = {
        "item_categories": _categories(),
        "history_len": H,
        "max_turn": 30,
        "slate_size": slate_size,
        "embed_dim": 8,
        "hidden_dim": 16,
        **model,
    }
    torch.manual_seed(0)
    return LERLTorchRLModule(observation_space=obs_space, action_space=action, model_config=config)


def _obs(mask: list[list[int]]) -> dict[str, torch.Tensor]:
    b = len(mask)
    g = torch.Generator().manual_seed(1)
    return {
        "history_items": torch.randint(0, N_ITEMS + 1, (b, H), generator=g),
        "history_rewards": torch.rand((b, H), generator=g),
        "step": torch.full((b, 1), 3),
        "category_mask": torch.tensor(mask, dtype=torch.int8),
        "category_shown": torch.rand((b, N_CATS), generator=g),
        "category_reward": torch.rand((b, N_CATS), generator=g),
    }


def _allowed(mask: list[int]) -> np.ndarray:
    return (_categories() @ np.asarray(mask)) > 0


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
def test_soft_mask_lowers_out_of_category_items_by_exactly_kappa(encoder: str) -> None:
    module = _module(mask="soft", kappa=2.5, encoder=encoder)
    mask = [0, 1, 0, 0]
    obs = _obs([mask])
    with torch.no_grad():
        state = module._state(obs)
        masked = module.logits(obs, state)[0].numpy()
        unmasked = (module.query(state) @ module.items.weight[:N_ITEMS].T + module.item_bias)[0].numpy()
    allowed = _allowed(mask)
    assert allowed[0] and allowed[1] and not allowed[2]  # item 0: any of its categories counts
    np.testing.assert_allclose(masked[allowed], unmasked[allowed], rtol=1e-6)
    np.testing.assert_allclose(masked[~allowed], unmasked[~allowed] - 2.5, rtol=1e-5)


def test_mask_reaches_the_forward_passes_and_all_ones_allows_everything() -> None:
    module = _module(mask="soft", kappa=100.0)
    out = module.forward_exploration({Columns.OBS: _obs([[1, 0, 0, 0], [1, 1, 1, 1]])})
    logits = out[Columns.ACTION_DIST_INPUTS].detach().numpy()
    probs = torch.softmax(torch.tensor(logits), -1).numpy()
    assert probs[0][~_allowed([1, 0, 0, 0])].sum() < 1e-30
    assert probs[1].min() > 1e-6  # no planner: no item is pushed down


def test_hard_mask_is_never_sampled() -> None:
    module = _module(mask="hard")
    masks = [[0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 0, 0]]
    out = module.forward_exploration({Columns.OBS: _obs(masks)})
    dist = module.get_exploration_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    actions = torch.stack([dist.sample() for _ in range(3000)]).numpy()  # (3000, 3)
    for row, mask in enumerate(masks):
        assert _allowed(mask)[actions[:, row]].all()
        assert len(np.unique(actions[:, row])) == _allowed(mask).sum()  # and every allowed item occurs
    greedy = module.forward_inference({Columns.OBS: _obs(masks)})[Columns.ACTION_DIST_INPUTS]
    best = module.get_inference_action_dist_cls().from_logits(greedy).to_deterministic().sample().numpy()
    assert all(_allowed(m)[a] for m, a in zip(masks, best))


def test_value_head_only_on_the_learner() -> None:
    module = _module()
    assert module.compute_values({Columns.OBS: _obs([[1, 1, 1, 1]] * 2)}).shape == (2,)
    assert "vf" in module.get_non_inference_attributes()


def test_item_init_sets_the_embedding_table() -> None:
    init = np.arange(N_ITEMS * 8, dtype=np.float32).reshape(N_ITEMS, 8)
    module = _module(item_init=init)
    np.testing.assert_array_equal(module.items.weight[:N_ITEMS].detach().numpy(), init)


def test_plackett_luce_slates() -> None:
    """k distinct items per sample, exact PL probabilities summing to 1 over ordered slates, top-k
    at inference, and the hard mask holds for every slot."""
    k = 2
    module = _module(slate_size=k, mask="hard")
    mask = [1, 0, 1, 0]  # 6 allowed items (plus none extra)
    out = module.forward_exploration({Columns.OBS: _obs([mask])})
    logits = out[Columns.ACTION_DIST_INPUTS]
    dist_cls = module.get_exploration_action_dist_cls()
    assert dist_cls is plackett_luce(k)
    dist = dist_cls.from_logits(logits)
    samples = torch.cat([dist.sample() for _ in range(500)]).numpy()  # (500, k)
    assert (samples[:, 0] != samples[:, 1]).all()
    assert _allowed(mask)[samples].all()
    slates = torch.tensor(list(itertools.permutations(range(N_ITEMS), k)))
    logp = dist_cls.from_logits(logits.expand(len(slates), -1)).logp(slates)
    assert torch.exp(logp).sum().item() == pytest.approx(1.0, abs=1e-5)
    top = dist.to_deterministic().sample().numpy()[0]
    assert list(top) == list(torch.topk(logits[0], k).indices.numpy())
