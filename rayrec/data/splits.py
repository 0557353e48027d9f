"""Train/validation/test splits. All keep the full catalog and user list; only interactions move.

- ``leave_last_out``: each user's last interaction(s) in time order go to test (and valid). The usual
  protocol for sequential recommenders and LAAC's offline evaluation.
- ``temporal``: one global time cut, so no training interaction comes after a test one. Users with no
  interaction before the cut have an empty training history.
- ``random_holdout``: a uniform sample of interactions, for fitting and checking rating models
  (the simulator's response model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError


@dataclass
class Split:
    train: Dataset
    valid: Dataset
    test: Dataset

    def sizes(self) -> dict[str, int]:
        return {k: getattr(self, k).n_interactions for k in ("train", "valid", "test")}


def leave_last_out(ds: Dataset, n_valid: int = 1, n_test: int = 1, min_train: int = 1) -> Split:
    """Hold out each user's last ``n_test`` interactions for test and the ``n_valid`` before for valid.

    Users with fewer than ``min_train + n_valid + n_test`` interactions keep everything in train (they
    are reported in ``meta['users_train_only']`` rather than dropped).
    """
    if n_valid < 0 or n_test < 1:
        raise ConfigError("leave_last_out needs n_test >= 1 and n_valid >= 0")
    df = ds.interactions  # sorted by (user, timestamp)
    counts = np.bincount(df["user"].to_numpy(), minlength=ds.n_users)
    pos_from_end = df.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    eligible = counts[df["user"].to_numpy()] >= min_train + n_valid + n_test
    is_test = eligible & (pos_from_end < n_test)
    is_valid = eligible & (pos_from_end >= n_test) & (pos_from_end < n_test + n_valid)
    is_train = ~(is_test | is_valid)
    short = int((counts < min_train + n_valid + n_test).sum())
    meta = {"split": "leave_last_out", "users_train_only": short}
    return Split(
        ds.with_interactions(df[is_train], **meta),
        ds.with_interactions(df[is_valid], **meta),
        ds.with_interactions(df[is_test], **meta),
    )


def temporal(ds: Dataset, valid_frac: float = 0.1, test_frac: float = 0.1) -> Split:
    """Cut at global timestamp quantiles: the last ``test_frac`` of time-ordered interactions is test."""
    if not (0 <= valid_frac < 1 and 0 < test_frac < 1 and valid_frac + test_frac < 1):
        raise ConfigError(
            "temporal split needs 0 <= valid_frac, 0 < test_frac and valid_frac + test_frac < 1"
        )
    df = ds.interactions
    ts = df["timestamp"].to_numpy()
    order = np.argsort(ts, kind="stable")
    n = len(df)
    n_test = int(round(n * test_frac))
    n_valid = int(round(n * valid_frac))
    which = np.zeros(n, dtype=np.int8)
    which[order[n - n_test :]] = 2
    which[order[n - n_test - n_valid : n - n_test]] = 1
    meta = {"split": "temporal"}
    return Split(
        ds.with_interactions(df[which == 0], **meta),
        ds.with_interactions(df[which == 1], **meta),
        ds.with_interactions(df[which == 2], **meta),
    )


def random_holdout(ds: Dataset, test_frac: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Uniformly sampled (train, test) interactions; the same seed gives the same split."""
    if not 0 < test_frac < 1:
        raise ConfigError("random_holdout needs 0 < test_frac < 1")
    rng = np.random.default_rng(seed)
    is_test = rng.random(ds.n_interactions) < test_frac
    df = ds.interactions
    meta = {"split": "random_holdout", "seed": seed}
    return ds.with_interactions(df[~is_test], **meta), ds.with_interactions(df[is_test], **meta)


# Split protocols by the name of the function that implements them (one spelling everywhere: the CLI's
# --split values, run records and library calls).
SPLITS: dict[str, Callable[..., Split]] = {"leave_last_out": leave_last_out, "temporal": temporal}


def check_split_name(how: str) -> None:
    """Raise before any loading when ``how`` names no split protocol: a typo should not cost a load."""
    if how not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, not {how!r}")


def split_dataset(ds: Dataset, how: str, options: Mapping[str, object] | None = None) -> Split:
    """``ds`` split by name (``leave_last_out`` or ``temporal``) with that split's keyword options."""
    check_split_name(how)
    try:
        return SPLITS[how](ds, **dict(options or {}))
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        given = sorted(options or {})
        raise ConfigError(f"the {how} split does not take option(s) {given} ({exc})") from None
