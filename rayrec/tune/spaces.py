"""Search spaces and the metric each sweep optimises.

LAAC: validation NDCG@10 (the metric ``train_laac`` selects on), reported after every Tune iteration.
LERL: validation R_tra (mean return per session on the fixed validation sessions, as ``train_online``
selects on). Both are maximised.

Ranges bracket the defaults (docs/design.md §8 for LAAC; ``LERLConfig`` for LERL) by about an order of
magnitude either way on log scales, where the knob is a rate or a weight; discrete knobs take the
values that change behaviour (m up to 5 categories per plan, a replan every 2..10 steps).
"""

from __future__ import annotations

from typing import Any

from ray import tune

LAAC_METRIC = "valid_ndcg@10"
LERL_METRIC = "valid_R_tra"
MODE = "max"

# knob -> a short human description (the CLI prints it; the plot labels its axes with the knob).
LAAC_KNOBS = {
    "beta": "β, Bellman-error weight",
    "lam": "λ, anchor weight towards π_LLM",
    "lr_actor": "actor learning rate",
    "lr_critic": "critic learning rate",
    "actor_update_interval": "actor step every m learner steps",
    "gamma": "γ, discount",
}
LERL_KNOBS = {
    "replan_every": "steps between plans",
    "m": "categories per plan",
    "kappa": "κ, soft-mask logit penalty",
    "n_reflections": "N_s, reflections per prompt",
    "lr": "PPO learning rate",
    "entropy_coeff": "PPO entropy coefficient",
}


def laac_search_space() -> dict[str, Any]:
    """LAAC's knobs (``LAACConfig.training`` names)."""
    return {
        "beta": tune.loguniform(0.5, 16.0),
        "lam": tune.loguniform(0.1, 10.0),
        "lr_actor": tune.loguniform(1e-5, 1e-3),
        "lr_critic": tune.loguniform(1e-4, 3e-3),
        "actor_update_interval": tune.choice([1, 2, 4]),
        "gamma": tune.uniform(0.8, 0.99),
    }


def lerl_search_space(n_categories: int | None = None) -> dict[str, Any]:
    """LERL's knobs (``LERLConfig.training`` names); ``m`` stays below the catalog's category count."""
    m_max = 5 if n_categories is None else max(1, min(5, int(n_categories) - 1))
    return {
        "replan_every": tune.randint(2, 11),
        "m": tune.randint(1, m_max + 1),
        "kappa": tune.loguniform(0.5, 20.0),
        "n_reflections": tune.randint(1, 5),
        "lr": tune.loguniform(1e-5, 1e-3),
        "entropy_coeff": tune.loguniform(1e-4, 5e-2),
    }
