"""Discrete CQL's learner (Kumar et al. 2020, CQL(H) on a double-Q DQN), one function per loss term.

Shapes: B states in the batch, I catalog items. Per head k ∈ {1, 2}:

    a*        = argmax_a ½(Q_1 + Q_2)(s', a)                    (online net selects: double Q)
    y         = r + γ (1−d) min_j Q̄_j(s', a*)                   (EMA target nets evaluate; no gradient)
    td_k      = ½ mean (Q_k(s, a) − y)²                          (n-step 1)
    cql_k     = mean_s [ logsumexp_a Q_k(s, a) − Q_k(s, a_logged) ]
    L         = Σ_k td_k + α_cql · cql_k

The conservative term pushes down every item's Q in proportion to its softmax weight and pushes up
the logged one, so items the data never shows in a state end up below the logged action; α_cql = 0
is plain double DQN on the logged transitions. The EMA targets move by τ after every minibatch.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.utils.typing import ModuleID, ParamDict, TensorType

from rayrec.algorithms.baselines.cql.cql_rl_module import (
    Q1,
    Q1_NEXT,
    Q1_TARGET_NEXT,
    Q2,
    Q2_NEXT,
    Q2_TARGET_NEXT,
)

# ----------------------------------------------------------------------------------------------------
# Loss terms (pure functions of tensors, so tests can drive them with hand-built values)
# ----------------------------------------------------------------------------------------------------


def td_target(
    rewards: torch.Tensor,  # (B,)
    dones: torch.Tensor,  # (B,) float 0/1
    gamma: float,
    q1_next: torch.Tensor,  # (B, I) online Q_1(s', ·)
    q2_next: torch.Tensor,  # (B, I) online Q_2(s', ·)
    q1_target_next: torch.Tensor,  # (B, I) Q̄_1(s', ·)
    q2_target_next: torch.Tensor,  # (B, I) Q̄_2(s', ·)
) -> torch.Tensor:
    """y = r + γ(1−d) min_j Q̄_j(s', argmax_a Q(s', a)): the online net picks, the EMA targets value."""
    with torch.no_grad():
        best = (q1_next + q2_next).argmax(1, keepdim=True)  # (B, 1)
        v = torch.minimum(q1_target_next.gather(1, best), q2_target_next.gather(1, best)).squeeze(1)
        return rewards + gamma * (1 - dones) * v  # (B,)


def td_loss(q: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """½ mean (Q(s, a_logged) − y)²."""
    q_sa = q.gather(1, actions[:, None]).squeeze(1)  # (B,)
    return 0.5 * ((q_sa - y) ** 2).mean()


def conservative_term(q: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """CQL(H): mean_s [logsumexp_a Q(s, a) − Q(s, a_logged)] (≥ 0; lowers out-of-data actions)."""
    q_sa = q.gather(1, actions[:, None]).squeeze(1)  # (B,)
    return (torch.logsumexp(q, 1) - q_sa).mean()


def cql_loss(
    q: torch.Tensor, actions: torch.Tensor, y: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """td + α_cql · conservative for one head; also the terms for logging."""
    td = td_loss(q, actions, y)
    cons = conservative_term(q, actions)
    return td + alpha * cons, {"td": td, "cql": cons}


# ----------------------------------------------------------------------------------------------------
# The Learner
# ----------------------------------------------------------------------------------------------------


class DiscreteCQLTorchLearner(TorchLearner):
    def build(self) -> None:
        self._num_updates = 0
        super().build()

    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        # Only the online Q net: the target copy is moved by EMA, never by Adam.
        params = self.get_parameters(self._module[module_id].unwrapped().q)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name="q",
            optimizer=torch.optim.Adam(params),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: Any, batch: dict[str, Any], fwd_out: dict[str, TensorType]
    ) -> TensorType:
        actions = batch[Columns.ACTIONS].long()  # (B,)
        rewards = batch[Columns.REWARDS].float()
        dones = batch[Columns.TERMINATEDS].float()
        y = td_target(
            rewards, dones, config.gamma,
            fwd_out[Q1_NEXT], fwd_out[Q2_NEXT], fwd_out[Q1_TARGET_NEXT], fwd_out[Q2_TARGET_NEXT],
        )  # fmt: skip
        loss1, terms1 = cql_loss(fwd_out[Q1], actions, y, config.cql_alpha)
        loss2, terms2 = cql_loss(fwd_out[Q2], actions, y, config.cql_alpha)
        with torch.no_grad():
            q = 0.5 * (fwd_out[Q1] + fwd_out[Q2])
            stats = {
                "loss": loss1 + loss2,
                "td_1": terms1["td"],
                "td_2": terms2["td"],
                "cql_1": terms1["cql"],
                "cql_2": terms2["cql"],
                "q_logged_mean": q.gather(1, actions[:, None]).mean(),
                "q_mean": q.mean(),
                "q_max_mean": q.max(1).values.mean(),
                "td_target_mean": y.mean(),
            }
        self.metrics.log_dict({k: v.item() for k, v in stats.items()}, key=module_id, window=1)
        return loss1 + loss2

    def apply_gradients(self, gradients_dict: ParamDict) -> None:
        # Once per minibatch (after_gradient_based_update runs once per update() call, which may hold
        # several minibatches): the optimizer step, then the EMA target.
        super().apply_gradients(gradients_dict)
        self._num_updates += 1
        for mid, module in self.module._rl_modules.items():
            tau = self.config.get_config_for_module(mid).tau
            with torch.no_grad():
                for main, target in module.unwrapped().get_target_network_pairs():
                    update_target_network(main_net=main, target_net=target, tau=tau)
            self.metrics.log_value((mid, "num_updates"), self._num_updates, window=1)

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["cql_num_updates"] = self._num_updates
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "cql_num_updates" in state:
            self._num_updates = int(state["cql_num_updates"])
