"""Every knob of the user simulator in one dataclass, so CLI flags, RLlib env_configs and run dirs
all carry the same plain dict (``asdict``) and a remote EnvRunner rebuilds the exact same simulator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from rayrec.envs.quit_models import make_quit_model
from rayrec.errors import ConfigError

RESPONSE_SAMPLING = ("expected", "bernoulli")


@dataclass
class SimConfig:
    """The simulator's settings; every default runs on a 2-core laptop.

    history_len: items (not steps) of recent history in the observation; slates add k items per step.
    slate_size: 1 gives ``Discrete(n_items)`` actions, k > 1 a slate ``MultiDiscrete([n_items] * k)``.
    max_turn: hard cap on session length (DORL's ``max_turn``); the step at t = max_turn - 1 truncates.
    quit_model / quit_params: a name from ``rayrec.envs.quit_models.QUIT_MODELS`` and overrides of that
        model's parameters (unknown keys raise).
    response_sampling: ``expected`` rewards the response model's value itself (DORL's ground-truth
        matrix reading); ``bernoulli`` samples a click with that probability (KuaiSim's sampled response).
    reward_noise: std of Gaussian noise added to each item's response before clipping to [0, 1].
    item_correlation: KuaiSim's rho, which lowers each slate item's response by rho times its mean
        category similarity to the other items of the slate; it has no effect on single-item actions.
    user_features: put the dataset's encoded user features into the observation (when it has any).
    category_history_obs: put per-category shown counts and mean rewards of the session into the
        observation; the LLM planner reads the same numbers through ``category_history()``.
    seed: seeds user sampling and reward sampling; ``None`` draws fresh entropy.
    """

    history_len: int = 10
    slate_size: int = 1
    max_turn: int = 30
    quit_model: str = "category_window"
    quit_params: dict = field(default_factory=dict)
    response_sampling: str = "expected"
    reward_noise: float = 0.0
    item_correlation: float = 0.2
    user_features: bool = False
    category_history_obs: bool = True
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.history_len < 1 or self.slate_size < 1 or self.max_turn < 1:
            raise ConfigError(
                f"history_len, slate_size and max_turn must be >= 1 (got {self.history_len}, "
                f"{self.slate_size}, {self.max_turn})"
            )
        if self.response_sampling not in RESPONSE_SAMPLING:
            raise ConfigError(
                f"response_sampling must be one of {RESPONSE_SAMPLING}, not {self.response_sampling!r}"
            )
        if self.reward_noise < 0 or self.item_correlation < 0:
            raise ConfigError("reward_noise and item_correlation must be >= 0")
        make_quit_model(self.quit_model, self.quit_params)  # a bad name or parameter fails here, early

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SimConfig:
        """Rebuild from :meth:`to_dict`; unknown keys raise so a typo in a config file is not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown simulator setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
