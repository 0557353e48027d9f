"""SASRec (Kang & McAuley, ICDM 2018): the supervised sequential baseline LAAC is held against.

Next-item prediction with a causal self-attention encoder trained by cross-entropy over the whole
catalog (RecBole's ``loss_type='CE'``), early-stopped on validation NDCG@k through the project's own
evaluator, so the number it is selected on is computed exactly as the reported ones are.

The network is the shared ``rayrec.algorithms.sequence_encoders.SASRecEncoder`` (the one LAAC's
``encoder='sasrec'`` uses): learned positions, pre-norm causal blocks, left padding, as in the
authors' code. It is fed item ids only (ratings zero, so its rating projection adds nothing), and a
user's score for item i is the dot product of the last position's output with i's input embedding.

Training targets are every prefix of each user's training sequence. Windows of ``max_len`` inputs
end every ``stride`` positions from the end of the sequence, and each window's loss counts only its
last ``stride`` targets (the first window counts all of its own), so every target is counted once with
at least ``max_len - stride + 1`` items of context: ``stride=1`` is RecBole's per-prefix augmentation
exactly (each target sees its full ``max_len`` history); larger strides train many targets per
forward pass, as the original SASRec does, at a fraction of the cost.

Scoring reads the user's history as it stands: after ``fit`` that is the training sequence (what a
validation target follows); ``observe(split.valid)`` appends the validation items, which is what the
test target follows (``fit_split`` does both). Scores exclude nothing; the evaluator removes seen items.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.sequence_encoders import SASRecEncoder
from rayrec.data import Dataset, default_relevance
from rayrec.errors import ConfigError
from rayrec.eval import SplitLike, evaluate_ranking


@dataclass(frozen=True)
class SASRecConfig:
    """Knobs of SASRec. The defaults are NOT yet selected on validation: they are RecBole's
    architecture sizes, dropout 0.2 as the SASRec paper uses on ML-1M, and an init and stride chosen for
    CPU cost. The search that should replace them (ml-100k, leave-last-out, valid NDCG@10) is
    ``python bench/sasrec_vs_recbole.py rayrec --grid``; record its winner here.

    max_len: items of history the model reads (RecBole's MAX_ITEM_LIST_LENGTH).
    stride: targets counted per training window (see the module docstring; 1 = every prefix its own
        sample, as RecBole trains).
    dim / n_blocks / n_heads / dropout: the encoder (RecBole: 64 / 2 / 2 / 0.5).
    init_std: std of the item and position embeddings at start (None keeps torch's N(0, 1); RecBole
        initialises every weight with std 0.02).
    lr / weight_decay / batch_size: Adam and the number of windows per step.
    max_epochs / patience / eval_every / k: early stopping on validation NDCG@k, evaluated every
        ``eval_every`` epochs, stopping after ``patience`` evaluations without improvement (RecBole's
        stopping_step 10); the best epoch's weights are kept.
    relevance: the rule for the validation targets (None: the dataset's, ``rayrec.data.default_relevance``).
    seed: initialisation, dropout and batch order.
    """

    max_len: int = 50
    stride: int = 50
    dim: int = 64
    n_blocks: int = 2
    n_heads: int = 2
    dropout: float = 0.2
    init_std: float | None = 0.05
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 10
    eval_every: int = 1
    k: int = 10
    relevance: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        positive_ints = (
            "max_len",
            "stride",
            "dim",
            "n_blocks",
            "n_heads",
            "batch_size",
            "max_epochs",
            "patience",
            "eval_every",
            "k",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SASRec {name}={value!r} must be an int >= 1")
        if self.stride > self.max_len:
            raise ConfigError(f"SASRec stride={self.stride} must not exceed max_len={self.max_len}")
        if self.dim % self.n_heads:
            raise ConfigError(f"SASRec dim={self.dim} must be divisible by n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"SASRec dropout={self.dropout} must lie in [0, 1)")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ConfigError(f"SASRec lr={self.lr} must be a finite number > 0")
        if not (self.weight_decay >= 0 and np.isfinite(self.weight_decay)):
            raise ConfigError(f"SASRec weight_decay={self.weight_decay} must be a finite number >= 0")
        if self.init_std is not None and not (self.init_std > 0 and np.isfinite(self.init_std)):
            raise ConfigError(f"SASRec init_std={self.init_std} must be a finite number > 0, or None")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"SASRec seed={self.seed!r} must be an int")


def training_windows(
    sequences: list[np.ndarray], max_len: int, stride: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (W, max_len) int64, left-padded; targets are -1 where not counted.

    Position j of a window holds input item x_t and target x_{t+1}. Windows end every ``stride``
    pairs from the end of a sequence; each counts its last ``stride`` pairs, the first one all of its.
    """
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for seq in sequences:
        pairs = len(seq) - 1
        end = pairs
        while end > 0:
            start = max(0, end - max_len)
            counted = start if start == 0 else max(start, end - stride)
            x = np.full(max_len, pad_id, dtype=np.int64)
            y = np.full(max_len, -1, dtype=np.int64)
            width = end - start
            x[max_len - width :] = seq[start:end]
            y_window = np.asarray(seq[start + 1 : end + 1], dtype=np.int64).copy()
            y_window[: counted - start] = -1
            y[max_len - width :] = y_window
            inputs.append(x)
            targets.append(y)
            if start == 0:
                break
            end -= stride
    if not inputs:
        return np.zeros((0, max_len), np.int64), np.zeros((0, max_len), np.int64)
    return np.stack(inputs), np.stack(targets)


class SASRecRecommender(Recommender):
    """SASRec as a ``Recommender``; ``fit(train, split)`` early-stops on ``split.valid``."""

    name = "sasrec"

    def __init__(self, config: SASRecConfig | None = None, **overrides: Any) -> None:
        known = {f.name for f in fields(SASRecConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"SASRec has no option(s) {unknown}; options are {sorted(known)}")
        self.config = replace(config or SASRecConfig(), **overrides)
        self.model: SASRecEncoder | None = None
        self._n_items = 0
        self._history: list[np.ndarray] = []
        self.log: list[dict[str, float]] = []  # one row per epoch: loss, valid NDCG@k, seconds
        self.best_epoch = 0
        self.best_valid = float("nan")
        self.fit_seconds = 0.0

    # -- history -------------------------------------------------------------------------------
    def observe(self, part: Dataset) -> SASRecRecommender:
        """Append ``part``'s interactions (time order) to each user's history; e.g. the validation
        items before scoring the test targets that follow them."""
        for user, items in enumerate(part.user_sequences()):
            if len(items):
                self._history[user] = np.concatenate([self._history[user], items])
        return self

    def _states(self, users: np.ndarray) -> torch.Tensor:
        """(B, 2*max_len) encoder input: the last max_len items left-padded, then zero ratings."""
        cfg = self.config
        items = np.full((len(users), cfg.max_len), self._n_items, dtype=np.float32)
        for row, user in enumerate(users):
            tail = self._history[int(user)][-cfg.max_len :]
            if len(tail):
                items[row, cfg.max_len - len(tail) :] = tail
        return torch.from_numpy(np.concatenate([items, np.zeros_like(items)], axis=1))

    # -- model ---------------------------------------------------------------------------------
    def _build(self, n_items: int) -> SASRecEncoder:
        cfg = self.config
        model = SASRecEncoder(
            n_items, cfg.max_len, dim=cfg.dim, n_blocks=cfg.n_blocks, n_heads=cfg.n_heads, dropout=cfg.dropout
        )
        if cfg.init_std is not None:
            nn.init.normal_(model.embed.items.weight, std=cfg.init_std)
            nn.init.normal_(model.pos.weight, std=cfg.init_std)
            with torch.no_grad():
                model.embed.items.weight[n_items].zero_()  # the pad row
        return model

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        assert self.model is not None
        return hidden @ self.model.embed.items.weight[: self._n_items].T

    # -- Recommender ---------------------------------------------------------------------------
    def fit(
        self,
        train: Dataset,
        split: SplitLike | None = None,
        *,
        on_epoch: Callable[[dict[str, float]], object] | None = None,
    ) -> SASRecRecommender:
        """Train on ``train``; with ``split``, evaluate NDCG@k on ``split.valid`` every ``eval_every``
        epochs, stop after ``patience`` evaluations without improvement and keep the best weights.
        Without ``split`` it trains ``max_epochs`` epochs (nothing to select on). ``on_epoch`` gets
        each epoch's log row (loss, seconds, validation NDCG), e.g. to print progress."""
        cfg = self.config
        started = time.perf_counter()
        torch.manual_seed(cfg.seed)
        self._n_items = train.n_items
        self._history = [np.asarray(s, dtype=np.int64) for s in train.user_sequences()]
        self.model = self._build(train.n_items)
        x_all, y_all = training_windows(self._history, cfg.max_len, cfg.stride, pad_id=train.n_items)
        if len(x_all) == 0:
            raise ConfigError("SASRec needs at least one user with two training interactions")
        x_all = torch.from_numpy(np.concatenate([x_all, np.zeros_like(x_all)], axis=1).astype(np.float32))
        y_all = torch.from_numpy(y_all)
        rule = cfg.relevance if cfg.relevance is not None else default_relevance(train)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        order_rng = torch.Generator().manual_seed(cfg.seed)
        self.log, best_state, self.best_valid, self.best_epoch, stale = [], None, -1.0, 0, 0
        for epoch in range(1, cfg.max_epochs + 1):
            tick = time.perf_counter()
            self.model.train()
            total, count = 0.0, 0
            for batch in torch.randperm(len(x_all), generator=order_rng).split(cfg.batch_size):
                targets = y_all[batch]
                counted = targets >= 0
                hidden = self.model.encode_all(x_all[batch])[counted]  # (M, d)
                loss = nn.functional.cross_entropy(self._logits(hidden), targets[counted])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * int(counted.sum())
                count += int(counted.sum())
            row = {"epoch": epoch, "loss": total / max(count, 1), "seconds": time.perf_counter() - tick}
            if split is not None and epoch % cfg.eval_every == 0:
                ndcg = evaluate_ranking(self, split, relevance=rule, k=cfg.k, on="valid", name=self.name)
                row[f"valid_NDCG@{cfg.k}"] = value = ndcg.metrics[f"NDCG@{cfg.k}"]
                if value > self.best_valid:
                    self.best_valid, self.best_epoch, stale = value, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    stale += 1
            self.log.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if split is not None and stale >= cfg.patience:
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            self.best_epoch = len(self.log)
        self.model.eval()
        self.fit_seconds = time.perf_counter() - started
        return self

    def fit_split(self, split: SplitLike) -> SASRecRecommender:
        """Fit on ``split.train`` with early stopping on ``split.valid``, then add the validation
        items to the histories: ready to score the test part."""
        return self.fit(split.train, split).observe(split.valid)  # type: ignore[arg-type]

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("call fit() before score()")
        self.model.eval()
        hidden = self.model(self._states(np.asarray(users)))
        return self._logits(hidden).numpy().astype(np.float32, copy=False)

    def summary(self) -> dict[str, Any]:
        """Config, selected epoch and its validation NDCG, epochs run and time: what a table records."""
        return {
            **asdict(self.config),
            "best_epoch": self.best_epoch,
            f"valid_NDCG@{self.config.k}": self.best_valid,
            "epochs_run": len(self.log),
            "fit_seconds": self.fit_seconds,
        }
