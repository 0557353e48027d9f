"""The π_LLM table LAAC's learner reads: per user (or per user and ``llm_stride`` block of steps), K
candidate items and the LLM's probabilities over them.

File: an ``.npz`` with ``user_ids (R,)`` internal user ids, ``steps (R,)`` the first logged step each row
covers (all 0 when π_LLM is asked once per user), ``candidates (R, K)`` item ids (-1 pads a row with
fewer than K), ``probs (R, K)`` (0 on pads, each row sums to 1) and ``fingerprint``, a JSON object with
at least ``dataset``, ``model``, ``prompt_version``, ``K`` and ``stride``. The learner refuses a table
whose fingerprint does not match the episodes and the config, so nothing trains on another dataset's
or another model's π_LLM.

The table lives on each learner (a few MB for ml-100k) rather than in the episodes, so the logged MDP
stays plain RLlib data that does not change when the LLM, prompt or K does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rayrec.errors import ConfigError, DataError

FINGERPRINT_KEYS = ("dataset", "model", "prompt_version", "K", "stride")


@dataclass
class LLMTable:
    user_ids: np.ndarray  # (R,) int64
    steps: np.ndarray  # (R,) int64
    candidates: np.ndarray  # (R, K) int64, -1 = pad
    probs: np.ndarray  # (R, K) float32
    fingerprint: dict

    @property
    def k(self) -> int:
        return self.candidates.shape[1]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:  # a file object keeps numpy from appending ".npz"
            np.savez(
                f,
                user_ids=self.user_ids,
                steps=self.steps,
                candidates=self.candidates,
                probs=self.probs,
                fingerprint=np.array(json.dumps(self.fingerprint, sort_keys=True)),
            )
        return path

    def check(self, n_users: int, n_items: int, where: str = "π_LLM table") -> None:
        """Shapes, id ranges and distributions; raises DataError naming ``where``."""
        r, k = self.candidates.shape
        if self.probs.shape != (r, k) or self.user_ids.shape != (r,) or self.steps.shape != (r,):
            raise DataError(
                f"inconsistent shapes: user_ids {self.user_ids.shape}, steps {self.steps.shape}, "
                f"candidates {self.candidates.shape}, probs {self.probs.shape}",
                path=where,
            )
        missing = [key for key in FINGERPRINT_KEYS if key not in self.fingerprint]
        if missing:
            raise DataError(f"fingerprint lacks {missing}; recompute the table", path=where)
        if ((self.user_ids < 0) | (self.user_ids >= n_users)).any():
            raise DataError(f"user ids outside [0, {n_users}): built for another dataset?", path=where)
        valid = self.candidates >= 0
        if (self.candidates >= n_items).any():
            raise DataError(f"candidate ids outside [0, {n_items}): built for another catalog?", path=where)
        if (self.probs < 0).any() or (self.probs[~valid] != 0).any():
            raise DataError("probabilities must be >= 0 and 0 on padded (-1) candidates", path=where)
        sums = self.probs.sum(1)
        bad = valid.any(1) & (np.abs(sums - 1) > 1e-3)
        if bad.any():
            raise DataError(f"{int(bad.sum())} rows' probabilities do not sum to 1", path=where)


def load_llm_table(path: str | Path) -> LLMTable:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"π_LLM table {path} does not exist; compute it first (or fix llm_table=...)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [c for c in ("user_ids", "candidates", "probs", "fingerprint") if c not in z.files]
            if missing:
                raise DataError(f"π_LLM table lacks arrays {missing} (has {z.files})", path=path)
            cands = z["candidates"].astype(np.int64)
            table = LLMTable(
                user_ids=z["user_ids"].astype(np.int64),
                steps=z["steps"].astype(np.int64) if "steps" in z.files else np.zeros(len(cands), np.int64),
                candidates=cands,
                probs=z["probs"].astype(np.float32),
                fingerprint=json.loads(str(z["fingerprint"])),
            )
    except (ValueError, OSError) as e:
        raise DataError(f"not a readable .npz π_LLM table ({e})", path=path) from e
    return table


def check_fingerprint(table: LLMTable, expected: dict, where: str | Path) -> None:
    """Every key of ``expected`` whose value is not None must match the table's fingerprint."""
    wrong = {
        key: (table.fingerprint.get(key), want)
        for key, want in expected.items()
        if want is not None and table.fingerprint.get(key) != want
    }
    if wrong:
        detail = ", ".join(
            f"{key}: table has {have!r}, run wants {want!r}" for key, (have, want) in wrong.items()
        )
        raise ConfigError(
            f"π_LLM table {where} was computed for other settings ({detail}); recompute it for this "
            "dataset/model/K/stride or point llm_table at the matching file"
        )


def random_llm_table(
    user_seen: list[np.ndarray], n_items: int, k: int, dataset: str, seed: int = 0, stride: int = 0
) -> LLMTable:
    """A stand-in π_LLM (named so in its fingerprint: model ``random``): K random items each user has not
    seen, with Dirichlet probabilities. For tests and for runs before the LLM table exists."""
    rng = np.random.default_rng(seed)
    n_users = len(user_seen)
    cands = np.full((n_users, k), -1, dtype=np.int64)
    for u, seen in enumerate(user_seen):
        pool = np.setdiff1d(np.arange(n_items), seen)
        take = rng.choice(pool, size=min(k, len(pool)), replace=False)
        cands[u, : len(take)] = take
    probs = rng.dirichlet(np.ones(k), size=n_users).astype(np.float32)
    probs[cands < 0] = 0
    probs /= np.maximum(probs.sum(1, keepdims=True), 1e-12)
    fp = {
        "dataset": dataset,
        "model": "random",
        "prompt_version": "none",
        "K": k,
        "stride": stride,
        "seed": seed,
    }
    return LLMTable(np.arange(n_users, dtype=np.int64), np.zeros(n_users, np.int64), cands, probs, fp)
