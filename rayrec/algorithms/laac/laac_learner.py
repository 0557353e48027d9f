"""LAAC's learner: the critic (follower) and actor (leader) losses of docs/design.md §8, one per term.

Shapes: B states in the batch, I catalog items, K π_LLM candidates per state. Comparator weights are
sparse: (idx (B, M), w (B, M)) with M = K for π_LLM / uniform and M = 1 for the logged action.

Critic, per k ∈ {1, 2}, π detached:
    gap_k     = mean_s [ Σ_a π(a|s) f_k(s,a) − Σ_a π_cmp(a|s) f_k(s,a) ]
    y         = r + γ(1−d) min_j Σ_a π(a|s') f̄_j(s',a)
    bellman_k = ½ mean (f_k(s,a) − y)² + ½ mean (f_k(s,a) − r − γ(1−d) Σ_a π(a|s') f_k(s',a))²
    anchor_k  = mean_s Σ_{a'∈U(s)} π_LLM(a'|s) (f_k(s,a') − sg[f_k(s,a)])²
    L_critic  = Σ_k gap_k + β bellman_k + λ anchor_k
Actor (every ``actor_update_interval`` learner steps, after ``bc_warmstart_steps`` of behaviour cloning):
    L_actor   = − mean_s Σ_a π(a|s) f_1(s,a) − α H(π(·|s))      (f_1 detached)

Every term only reaches the parameters it is meant to train (π is detached in the critic terms, f_1 in
the actor's, the targets never have gradients), so one backward pass of the summed loss gives each
named optimizer ("actor", "critic", "critic_twin") exactly its own gradient, and DDP sees one backward
per forward. On steps where the actor is not updated its loss is left out, so its parameters get no
gradient and Adam does not move them (DDP then needs ``find_unused_parameters=True``, LAACConfig's
default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.utils.typing import ModuleID, ParamDict, TensorType

from rayrec.algorithms.laac.laac_rl_module import (
    LOGITS_NEXT,
    Q1,
    Q1_NEXT,
    Q1_TARGET_NEXT,
    Q2,
    Q2_NEXT,
    Q2_TARGET_NEXT,
)
from rayrec.algorithms.laac.llm_table import LLMTable, load_llm_table
from rayrec.data import logged_mdp

COMPARATORS = ("llm", "data", "uniform")


# ----------------------------------------------------------------------------------------------------
# Loss terms (pure functions of tensors, so tests can drive them with hand-built values)
# ----------------------------------------------------------------------------------------------------


def comparator(
    kind: str,
    actions: torch.Tensor,  # (B,) logged actions
    cands: torch.Tensor,  # (B, K) candidate ids (pads already replaced by a valid id)
    probs: torch.Tensor,  # (B, K) π_LLM over them (0 on pads)
    valid: torch.Tensor,  # (B, K) bool, real candidates
) -> tuple[torch.Tensor, torch.Tensor]:
    """π_cmp as sparse (idx (B, M), w (B, M)). States with no candidate fall back to the logged action
    (ATAC's comparator), so an empty π_LLM never leaves the gap term without a reference."""
    one_hot_idx, one_hot_w = actions[:, None], torch.ones_like(actions, dtype=probs.dtype)[:, None]
    if kind == "data":
        return one_hot_idx, one_hot_w
    if kind == "llm":
        w = probs * valid
    elif kind == "uniform":
        w = valid.to(probs.dtype) / valid.sum(1, keepdim=True).clamp(min=1)
    else:
        raise ValueError(f"comparator must be one of {COMPARATORS}, not {kind!r}")
    empty = ~valid.any(1)  # (B,)
    idx = torch.cat([cands, one_hot_idx], 1)  # (B, K+1)
    w = torch.cat([w * (~empty)[:, None], one_hot_w * empty[:, None]], 1)
    return idx, w


def gap_term(
    q: torch.Tensor,  # (B, I) f_k(s, ·)
    pi: torch.Tensor,  # (B, I) π(·|s), detached
    cmp_idx: torch.Tensor,  # (B, M)
    cmp_w: torch.Tensor,  # (B, M)
) -> torch.Tensor:
    """mean_s [ f_k(s, π) − f_k(s, π_cmp) ]: the critic lowers what π picks and raises what π_cmp picks."""
    f_pi = (pi.detach() * q).sum(1)  # (B,)
    f_cmp = (cmp_w * q.gather(1, cmp_idx)).sum(1)  # (B,)
    return (f_pi - f_cmp).mean()


def bellman_target(
    rewards: torch.Tensor,  # (B,)
    dones: torch.Tensor,  # (B,) float 0/1
    gamma: float,
    pi_next: torch.Tensor,  # (B, I) π(·|s'), detached
    q1_target_next: torch.Tensor,  # (B, I) f̄_1(s', ·)
    q2_target_next: torch.Tensor,  # (B, I) f̄_2(s', ·)
) -> torch.Tensor:
    """y = r + γ(1−d) min_j Σ_a π(a|s') f̄_j(s', a), from the EMA target critics; no gradient."""
    with torch.no_grad():
        v1 = (pi_next * q1_target_next).sum(1)
        v2 = (pi_next * q2_target_next).sum(1)
        return rewards + gamma * (1 - dones) * torch.minimum(v1, v2)  # (B,)


def bellman_term(
    q_sa: torch.Tensor,  # (B,) f_k(s, a) for the logged a
    y: torch.Tensor,  # (B,) target from bellman_target
    rewards: torch.Tensor,  # (B,)
    dones: torch.Tensor,  # (B,)
    gamma: float,
    pi_next: torch.Tensor,  # (B, I), detached
    q_next: torch.Tensor,  # (B, I) f_k(s', ·) of the online critic (gradient flows: residual term)
) -> torch.Tensor:
    """½ TD error against the target nets + ½ residual error through the online critic at s' (ATAC)."""
    td = 0.5 * ((q_sa - y) ** 2).mean()
    residual_target = rewards + gamma * (1 - dones) * (pi_next.detach() * q_next).sum(1)
    residual = 0.5 * ((q_sa - residual_target) ** 2).mean()
    return td + residual


def anchor_term(
    q: torch.Tensor,  # (B, I) f_k(s, ·)
    actions: torch.Tensor,  # (B,)
    cands: torch.Tensor,  # (B, K)
    probs: torch.Tensor,  # (B, K) π_LLM (0 on pads)
    unexplored: torch.Tensor,  # (B, K) bool, candidate ∈ U(s)
) -> torch.Tensor:
    """mean_s Σ_{a'∈U(s)} π_LLM(a'|s) (f_k(s,a') − sg[f_k(s,a)])²: pulls LLM-only values toward the
    logged action's value in the same state, never the other way round."""
    q_logged = q.gather(1, actions[:, None]).detach()  # (B, 1) stop-gradient anchor
    q_cand = q.gather(1, cands)  # (B, K)
    w = probs * unexplored  # (B, K)
    return (w * (q_cand - q_logged) ** 2).sum(1).mean()


def critic_loss(
    *,
    q: torch.Tensor,
    q_next: torch.Tensor,
    y: torch.Tensor,
    pi: torch.Tensor,
    pi_next: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    cmp_idx: torch.Tensor,
    cmp_w: torch.Tensor,
    cands: torch.Tensor,
    probs: torch.Tensor,
    unexplored: torch.Tensor,
    gamma: float,
    beta: float,
    lam: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """gap_k + β bellman_k + λ anchor_k for one critic; also returns the terms for logging."""
    q_sa = q.gather(1, actions[:, None]).squeeze(1)  # (B,)
    gap = gap_term(q, pi, cmp_idx, cmp_w)
    bell = bellman_term(q_sa, y, rewards, dones, gamma, pi_next, q_next)
    anchor = anchor_term(q, actions, cands, probs, unexplored)
    return gap + beta * bell + lam * anchor, {"gap": gap, "bellman": bell, "anchor": anchor}


def actor_loss(logits: torch.Tensor, q1: torch.Tensor, alpha: float) -> torch.Tensor:
    """− mean_s Σ_a π(a|s) f_1(s,a) − α H(π(·|s)); the critic is a fixed landscape here."""
    logp = F.log_softmax(logits, -1)  # (B, I)
    pi = logp.exp()
    entropy = -(pi * logp).sum(1)  # (B,)
    return (-(pi * q1.detach()).sum(1) - alpha * entropy).mean()


def bc_loss(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Behaviour cloning warm start: cross-entropy of the logged next item."""
    return F.cross_entropy(logits, actions)


# ----------------------------------------------------------------------------------------------------
# π_LLM lookup on the learner
# ----------------------------------------------------------------------------------------------------


class LLMLookup:
    """π_LLM(·|s) and U(s) per (user, step), as dense tensors on the learner's device.

    U(s) = candidates with no logged interaction by this user (``unexplored="user"``) or by anyone in
    the training data (``"global"``); "logged" means appearing as an action of the episodes, which for
    the logged MDP is every training interaction.
    """

    def __init__(
        self,
        table: LLMTable,
        n_users: int,
        stride: int,
        unexplored: str,
        logged_users: np.ndarray,
        logged_items: np.ndarray,
        n_items: int,
        device: torch.device,
    ) -> None:
        self.stride = stride
        r, k = table.candidates.shape
        # Row of each (user, block of `stride` steps), forward-filled over blocks.
        block = table.steps // stride if stride > 0 else np.zeros(r, np.int64)
        n_blocks = int(block.max()) + 1 if r else 1
        row_of = np.full((n_users, n_blocks), -1, dtype=np.int64)
        row_of[table.user_ids, block] = np.arange(r)
        for b in range(1, n_blocks):
            row_of[:, b] = np.where(row_of[:, b] < 0, row_of[:, b - 1], row_of[:, b])
        valid = table.candidates >= 0
        cands = np.where(valid, table.candidates, 0)
        if unexplored == "global":
            seen = np.zeros(n_items, dtype=bool)
            seen[logged_items] = True
            unexpl = valid & ~seen[cands]
        else:
            # (user, item) pairs as one int64 key each, so the membership test is vectorised
            logged = np.unique(logged_users.astype(np.int64) * n_items + logged_items.astype(np.int64))
            keys = table.user_ids[:, None] * n_items + cands  # (R, K)
            unexpl = valid & ~np.isin(keys, logged)
        t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
        # One extra all-pad row (index r) answers states without any π_LLM row.
        self.row_of = t(np.where(row_of < 0, r, row_of))
        self.cands = t(np.vstack([cands, np.zeros((1, k), np.int64)]))
        self.probs = t(np.vstack([table.probs, np.zeros((1, k), np.float32)]))
        self.valid = t(np.vstack([valid, np.zeros((1, k), bool)]))
        self.unexplored = t(np.vstack([unexpl, np.zeros((1, k), bool)]))

    def __call__(self, users: torch.Tensor, steps: torch.Tensor) -> dict[str, torch.Tensor]:
        block = (steps // self.stride) if self.stride > 0 else torch.zeros_like(steps)
        rows = self.row_of[users, block.clamp(max=self.row_of.shape[1] - 1)]  # (B,)
        return {
            "cands": self.cands[rows],  # (B, K)
            "probs": self.probs[rows],
            "valid": self.valid[rows],
            "unexplored": self.unexplored[rows],
        }


# ----------------------------------------------------------------------------------------------------
# The Learner
# ----------------------------------------------------------------------------------------------------


class LAACTorchLearner(TorchLearner):
    def build(self) -> None:
        self._num_updates = 0  # learner steps so far (minibatch updates); read by the optimizers' setup
        super().build()
        cfg = self.config
        info = logged_mdp.read_info(cfg.input_)
        cols = logged_mdp.read_columns(
            cfg.input_, [cfg.user_id_column, cfg.input_read_schema.get("actions", "actions")]
        )
        users, items = cols[cfg.user_id_column], cols[cfg.input_read_schema.get("actions", "actions")]
        n_items = self.module[next(iter(self.module.keys()))].unwrapped().n_items
        n_users = info.n_users if info else int(users.max()) + 1
        table = load_llm_table(cfg.llm_table)
        table.check(n_users, n_items, where=str(cfg.llm_table))
        self._llm = LLMLookup(
            table, n_users, cfg.llm_stride, cfg.unexplored, users, items, n_items, self._device
        )
        if cfg.tail_items is not None:
            tail = np.zeros(n_items, dtype=bool)
            tail[np.asarray(cfg.tail_items, dtype=np.int64)] = True
        else:  # long tail = all but the top `head_frac` of items by logged popularity
            pop = np.bincount(items, minlength=n_items)
            order = np.argsort(-pop, kind="stable")
            tail = np.ones(n_items, dtype=bool)
            tail[order[: int(np.ceil(cfg.head_frac * n_items))]] = False
        self._tail = torch.as_tensor(tail, device=self._device)

    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        module = self._module[module_id].unwrapped()
        for name, net, lr in (
            ("critic", module.critic, config.lr_critic),
            ("critic_twin", module.critic_twin, config.lr_critic),
        ):
            params = self.get_parameters(net)
            self.register_optimizer(
                module_id=module_id,
                optimizer_name=name,
                optimizer=torch.optim.Adam(params),
                params=params,
                lr_or_lr_schedule=lr,
            )
        # The actor's lr switches from lr_bc to lr_actor after the warm start (see
        # after_gradient_based_update), so RLlib's fixed-lr scheduler is not used for it.
        params = self.get_parameters(module.actor)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name="actor",
            optimizer=torch.optim.Adam(params, lr=self._actor_lr(config)),
            params=params,
            lr_or_lr_schedule=None,
        )

    def _actor_lr(self, config: Any) -> float:
        return config.lr_bc if self._num_updates < config.bc_warmstart_steps else config.lr_actor

    def _actor_phase(self, config: Any) -> str:
        if self._num_updates < config.bc_warmstart_steps:
            return "bc"
        if (self._num_updates - config.bc_warmstart_steps) % config.actor_update_interval == 0:
            return "actor"
        return "skip"

    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: Any, batch: dict[str, Any], fwd_out: dict[str, TensorType]
    ) -> TensorType:
        actions = batch[Columns.ACTIONS].long()  # (B,)
        rewards = batch[Columns.REWARDS].float()
        dones = batch[Columns.TERMINATEDS].float()
        users = batch[config.user_id_column].long().reshape(-1)
        steps = batch["step"].long().reshape(-1) if "step" in batch else torch.zeros_like(users)
        llm = self._llm(users, steps)
        logits = fwd_out[Columns.ACTION_DIST_INPUTS]  # (B, I)
        pi = F.softmax(logits, -1).detach()
        pi_next = F.softmax(fwd_out[LOGITS_NEXT], -1).detach()
        cmp_idx, cmp_w = comparator(config.comparator, actions, llm["cands"], llm["probs"], llm["valid"])
        y = bellman_target(
            rewards, dones, config.gamma, pi_next, fwd_out[Q1_TARGET_NEXT], fwd_out[Q2_TARGET_NEXT]
        )
        common = dict(
            y=y, pi=pi, pi_next=pi_next, actions=actions, rewards=rewards, dones=dones, cmp_idx=cmp_idx,
            cmp_w=cmp_w, cands=llm["cands"], probs=llm["probs"], unexplored=llm["unexplored"],
            gamma=config.gamma, beta=config.beta, lam=config.lam,
        )  # fmt: skip
        loss1, terms1 = critic_loss(q=fwd_out[Q1], q_next=fwd_out[Q1_NEXT], **common)
        loss2, terms2 = critic_loss(q=fwd_out[Q2], q_next=fwd_out[Q2_NEXT], **common)
        total = loss1 + loss2
        phase = self._actor_phase(config)
        a_loss = actor_loss(logits, fwd_out[Q1], config.alpha)
        b_loss = bc_loss(logits, actions)
        if phase == "bc":
            total = total + b_loss
        elif phase == "actor":
            total = total + a_loss
        self._log(
            module_id, fwd_out, logits, actions, llm, terms1, terms2, loss1 + loss2, a_loss, b_loss, phase
        )
        return total

    def _log(self, mid, fwd_out, logits, actions, llm, terms1, terms2, c_loss, a_loss, b_loss, phase) -> None:
        with torch.no_grad():
            q1 = fwd_out[Q1]
            logp = F.log_softmax(logits, -1)
            pi = logp.exp()
            u = llm["unexplored"].float()
            q_llm_only = (q1.gather(1, llm["cands"]) * u).sum() / u.sum().clamp(min=1)
            mass_llm = (pi.gather(1, llm["cands"]) * llm["valid"]).sum(1).mean()
            stats = {
                "critic_loss": c_loss,
                "actor_loss": a_loss,
                "bc_loss": b_loss,
                "gap_1": terms1["gap"],
                "gap_2": terms2["gap"],
                "bellman_1": terms1["bellman"],
                "bellman_2": terms2["bellman"],
                "anchor_1": terms1["anchor"],
                "anchor_2": terms2["anchor"],
                "f_logged_mean": q1.gather(1, actions[:, None]).mean(),
                "f_llm_only_mean": q_llm_only,
                "pi_mass_llm": mass_llm,
                "pi_mass_tail": (pi * self._tail).sum(1).mean(),
                "entropy": -(pi * logp).sum(1).mean(),
                "actor_phase_bc": torch.tensor(float(phase == "bc")),
                "actor_updated": torch.tensor(float(phase != "skip")),
            }
        self.metrics.log_dict({k: v.item() for k, v in stats.items()}, key=mid, window=1)

    def compute_gradients(self, loss_per_module: dict[ModuleID, TensorType], **kwargs: Any) -> ParamDict:
        # As TorchLearner's, but parameters without a gradient this step (the actor on skipped steps)
        # are left out, so their optimizer does not move them.
        grads = super().compute_gradients(loss_per_module, **kwargs)
        return {pid: g for pid, g in grads.items() if g is not None}

    def apply_gradients(self, gradients_dict: ParamDict) -> None:
        # Once per minibatch (after_gradient_based_update runs once per update() call, which may hold
        # several minibatches): optimizer steps, then the EMA targets, the step count and the actor's lr.
        super().apply_gradients(gradients_dict)
        self._num_updates += 1
        for mid, module in self.module._rl_modules.items():
            config = self.config.get_config_for_module(mid)
            with torch.no_grad():
                for main, target in module.unwrapped().get_target_network_pairs():
                    update_target_network(main_net=main, target_net=target, tau=config.tau)
            for group in self.get_optimizer(mid, "actor").param_groups:
                group["lr"] = self._actor_lr(config)
            self.metrics.log_value((mid, "num_updates"), self._num_updates, window=1)

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["laac_num_updates"] = self._num_updates
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "laac_num_updates" in state:
            self._num_updates = int(state["laac_num_updates"])
