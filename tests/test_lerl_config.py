"""LERLConfig: every bad value is a ConfigError (a RayrecError) naming what to change, at config time."""

from __future__ import annotations

import numpy as np
import pytest

from rayrec.algorithms.lerl import LERLConfig
from rayrec.errors import ConfigError, RayrecError


def _env_config(n_items: int = 12, n_categories: int = 4, slate_size: int = 1) -> dict:
    cats = np.zeros((n_items, n_categories), dtype=bool)
    cats[np.arange(n_items), np.arange(n_items) % n_categories] = True
    return {
        "categories": cats,
        "category_names": [f"c{i}" for i in range(n_categories)],
        "sim": {"slate_size": slate_size},
    }


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"planner": "gpt"}, "planner must be one of"),
        ({"kappa": -1.0}, "kappa"),
        ({"kappa": float("nan")}, "kappa"),
        ({"mask": "medium"}, "mask must be one of"),
        ({"encoder": "lstm"}, "encoder must be one of"),
        ({"reflection": "poem"}, "reflection must be one of"),
        ({"replan_every": 0}, "replan_every"),
        ({"m": 0}, "LERL m must be"),
        ({"n_reflections": -1}, "n_reflections"),
        ({"pool_eviction": "random"}, "pool_eviction"),
        ({"item_init": "simulator"}, "item_init"),
    ],
)
def test_bad_settings_fail_when_set(settings: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        LERLConfig().training(**settings)
    assert isinstance(info.value, RayrecError)


def test_m_larger_than_the_number_of_categories() -> None:
    config = LERLConfig().environment(env_config=_env_config(n_categories=4))
    with pytest.raises(ConfigError, match=r"m = 5 .* only 4 categories; set m <= 4"):
        config.training(m=5)
    # set in the other order, the env's check still fires when the env arrives
    config = LERLConfig().training(m=5, planner="round_robin")
    with pytest.raises(ConfigError, match="only 4 categories"):
        config.environment(env_config=_env_config(n_categories=4))


def test_checks_that_need_the_env_run_at_build_time_before_any_worker() -> None:
    config = LERLConfig().training(planner="round_robin")
    config.m = 9  # set behind the setters' back: validate() still catches it
    config.env_config = _env_config(n_categories=4)
    with pytest.raises(ConfigError, match="only 4 categories"):
        config.validate()
    with pytest.raises(ConfigError, match="needs the simulator"):
        LERLConfig().training(planner="round_robin").validate()
    with pytest.raises(ConfigError, match="slate_size = 2 but the simulator's is 3"):
        LERLConfig().environment(env_config=_env_config(slate_size=3)).training(slate_size=2)
    follows = LERLConfig().environment(env_config=_env_config(slate_size=3)).training(planner="random")
    assert follows.get_default_rl_module_spec().model_config["slate_size"] == 3  # None: the simulator's
    sync = LERLConfig().environment(env_config=_env_config()).training(planner="round_robin")
    sync.env_runners(gym_env_vectorize_mode="sync")
    with pytest.raises(ConfigError, match="vector_entry_point"):
        sync.validate()


def test_defaults_are_valid_and_reach_the_env_config() -> None:
    config = (
        LERLConfig().environment(env_config=_env_config()).training(planner="random", m=2, n_reflections=0)
    )
    config.validate()
    assert config.env == "rayrec-lerl"
    lerl = config.env_config["lerl"]
    assert (lerl["planner"], lerl["m"], lerl["replan_every"], lerl["n_reflections"]) == ("random", 2, 5, 0)
    spec = config.get_default_rl_module_spec()
    assert spec.model_config["kappa"] == 5.0 and spec.model_config["mask"] == "soft"


def test_item_init_mf_comes_from_the_logged_train_split() -> None:
    from rayrec.algorithms.lerl import mf_item_embeddings
    from rayrec.data.registry import load_dataset

    init = mf_item_embeddings("ml-100k", 8, seed=0)  # the same call the config makes
    assert init.shape == (load_dataset("ml-100k").n_items, 8) and np.isfinite(init).all()
    assert init.std() > 0
    config = LERLConfig().environment(env_config={**_env_config(), "dataset": "ml-100k"})
    config.training(item_init="mf", embed_dim=8)  # seed 0: the cached fit above is reused
    spec_init = config.get_default_rl_module_spec().model_config["item_init"]
    np.testing.assert_array_equal(spec_init, init)
