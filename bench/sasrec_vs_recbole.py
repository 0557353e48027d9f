"""SASRec in rayrec beside RecBole 1.2.1's SASRec on the same ml-100k leave-one-out protocol.

    python bench/sasrec_vs_recbole.py rayrec  [--grid] [--max-epochs N]   # ours (tuning on valid)
    /tmp/recbole-venv/bin/python bench/sasrec_vs_recbole.py recbole [--budget-s S]

Protocol on both sides: RecBole's own atomic file ml-100k.inter (the one rayrec loads), no filtering
(RecBole's defaults filter nothing for ml-100k: no val_interval, no inter_num intervals), each user's
last interaction is test and the one before valid (RecBole ``LS: valid_and_test`` with ``order: TO``;
rayrec ``leave_last_out``), full-catalog ranking, NDCG@10 / HR@10, early stopping on valid NDCG@10
with stopping_step 10. One difference is built into RecBole: its full-sort evaluation of sequential
models does not remove the user's history from the ranking (rayrec's evaluator does). So the RecBole
run reports two figures: RecBole's own evaluator, and RecBole's trained network scored by rayrec's
``evaluate_ranking`` on rayrec's split (identical protocol; the per-user held-out items are checked
to be the same ones first).

RecBole is not a dependency of rayrec. Install it in a separate venv that reuses the project's torch:
    /work/main/.venv/bin/python -m venv /tmp/recbole-venv
    echo /work/main/.venv/lib/python3.11/site-packages \
        > /tmp/recbole-venv/lib/python3.11/site-packages/main.pth
    /tmp/recbole-venv/bin/pip install --no-deps recbole==1.2.1 colorlog texttable thop tabulate
    /tmp/recbole-venv/bin/pip install tensorboard scikit-learn
(RecBole 1.2.1 still calls ``np.float_`` etc., removed in NumPy 2; this script restores the aliases.)
Without RecBole importable the ``recbole`` mode says so and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

K = 10
# The grid searched on validation NDCG@10 (test is computed for the selected config only).
GRID = {
    "lr": [1e-3, 3e-3],
    "dropout": [0.2, 0.5],
    "dim": [64],
    "max_len": [50],
    "weight_decay": [0.0],
}
EXTRA = [  # single-knob departures from the grid's best, tried after it
    {"max_len": 100},
    {"weight_decay": 1e-4},
    {"dim": 128},
]


def _split():
    from rayrec.data import leave_last_out, load_dataset

    ds = load_dataset("ml-100k")
    return ds, leave_last_out(ds)


def _fit(split, **cfg):
    from rayrec.algorithms.baselines.sasrec import SASRecRecommender

    rec = SASRecRecommender(**cfg)
    rec.fit(split.train, split, on_epoch=lambda row: print("  ", cfg, row, flush=True))
    return rec


def rayrec_mode(args: argparse.Namespace) -> None:
    import torch

    from rayrec.eval import evaluate_ranking

    ds, split = _split()
    base = {"max_epochs": args.max_epochs, "patience": args.patience, "seed": args.seed}
    if args.stride is not None:
        base["stride"] = args.stride
    configs = [{}]
    if args.grid:
        keys = list(GRID)
        configs = [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]
    rows: list[dict] = []
    fitted: list = []

    def trial(cfg: dict) -> None:
        rec = _fit(split, **base, **cfg)
        row = {
            **cfg,
            "valid_NDCG@10": rec.best_valid,
            "best_epoch": rec.best_epoch,
            "epochs": len(rec.log),
            "fit_s": round(rec.fit_seconds, 1),
        }
        rows.append(row)
        fitted.append(rec)
        print(json.dumps(row), flush=True)

    for cfg in configs:
        trial(cfg)
    if args.grid:
        best = max(rows, key=lambda r: r["valid_NDCG@10"])
        best_cfg = {k: best[k] for k in GRID}
        for extra in EXTRA:
            trial({**best_cfg, **extra})
    pick = int(np.argmax([r["valid_NDCG@10"] for r in rows]))
    chosen = {k: v for k, v in rows[pick].items() if k in GRID}
    print(f"selected on valid NDCG@10: {chosen}", flush=True)
    rec = fitted[pick].observe(split.valid)  # its best-epoch weights; the test item follows the valid one
    test = evaluate_ranking(rec, split, relevance="all", k=K, on="test", name="sasrec").metrics
    print(
        f"rayrec SASRec ({torch.get_num_threads()} threads): valid NDCG@10 {rec.best_valid:.4f} | "
        f"test NDCG@10 {test['NDCG@10']:.4f} HR@10 {test['HR@10']:.4f} | best epoch {rec.best_epoch}, "
        f"{len(rec.log)} epochs, {rec.fit_seconds:.0f} s, "
        f"{np.mean([r['seconds'] for r in rec.log]):.1f} s/epoch",
        flush=True,
    )
    print(json.dumps({"table": rows, "selected": chosen, "test": test}, default=float))


# ---------------------------------------------------------------------------------------------- RecBole
def _numpy2_aliases() -> None:
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, old):
            setattr(np, old, new)


class _BudgetReached(Exception):
    pass


def recbole_mode(args: argparse.Namespace) -> None:
    _numpy2_aliases()
    try:
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.model.sequential_recommender import SASRec
        from recbole.trainer import Trainer
        from recbole.utils import init_seed
    except ImportError as exc:
        print(f"RecBole not importable ({exc}); skipping the reference run (see this file's docstring)")
        return
    from rayrec.assets import asset_dir
    from rayrec.eval import evaluate_ranking

    data_root = asset_dir("ml-100k").parent
    config = Config(
        model="SASRec",
        dataset="ml-100k",
        config_dict={
            "data_path": str(data_root),
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            "eval_args": {
                "split": {"LS": "valid_and_test"},
                "order": "TO",
                "group_by": "user",
                "mode": "full",
            },
            "train_neg_sample_args": None,
            "loss_type": "CE",
            "metrics": ["Hit", "NDCG"],
            "topk": [K],
            "valid_metric": "NDCG@10",
            "stopping_step": 10,
            "epochs": args.max_epochs,
            "use_gpu": False,
            "seed": args.seed,
            "show_progress": False,
            "checkpoint_dir": args.checkpoint_dir,
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data._dataset).to(config["device"])
    budget_end = time.perf_counter() + args.budget_s

    class BudgetTrainer(Trainer):
        def _train_epoch(self, *a, **kw):  # type: ignore[no-untyped-def]
            if time.perf_counter() > budget_end:
                raise _BudgetReached
            tick = time.perf_counter()
            out = super()._train_epoch(*a, **kw)
            print(
                f"recbole epoch {a[1] if len(a) > 1 else '?'}: {time.perf_counter() - tick:.0f} s", flush=True
            )
            return out

    trainer = BudgetTrainer(config, model)
    started = time.perf_counter()
    stopped_by = "early stopping / max epochs"
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except _BudgetReached:
        stopped_by = f"the {args.budget_s:.0f} s budget"
    fit_s = time.perf_counter() - started
    own = trainer.evaluate(test_data, load_best_model=True, model_file=trainer.saved_model_file)
    print(
        f"RecBole SASRec, RecBole's evaluator (history not excluded): {dict(own)}; "
        f"best valid {trainer.best_valid_score:.4f}; stopped by {stopped_by}; {fit_s:.0f} s",
        flush=True,
    )

    # The same trained network through rayrec's evaluator on rayrec's split.
    ds, split = _split()
    tok_item = dataset.field2token_id["item_id"]
    tok_user = dataset.field2token_id["user_id"]
    rb_item = np.array([tok_item[str(i)] for i in ds.item_ids])  # rayrec item -> RecBole id
    rb_user = np.array([tok_user[str(u)] for u in ds.user_ids])
    # Same held-out items per user on both sides (guards against a tie-order difference in the splits).
    uid, iid = dataset.uid_field, dataset.iid_field
    test_inter = test_data._dataset.inter_feat
    rb_test = dict(zip(test_inter[uid].numpy().tolist(), test_inter[iid].numpy().tolist(), strict=True))
    ours = split.test.interactions
    same = np.mean(
        [rb_test.get(rb_user[u]) == rb_item[i] for u, i in zip(ours["user"], ours["item"], strict=True)]
    )
    print(f"test items identical for {same:.1%} of users", flush=True)

    class RecBoleScorer:
        def __init__(self, parts) -> None:
            seqs = [p.user_sequences() for p in parts]
            self.hist = [np.concatenate([s[u] for s in seqs]) for u in range(ds.n_users)]

        @torch.no_grad()
        def score(self, users: np.ndarray) -> np.ndarray:
            n = model.max_seq_length
            seq = np.zeros((len(users), n), dtype=np.int64)  # RecBole pads on the right with 0
            lens = np.zeros(len(users), dtype=np.int64)
            for row, user in enumerate(users):
                tail = rb_item[self.hist[int(user)][-n:]]
                seq[row, : len(tail)] = tail
                lens[row] = max(len(tail), 1)
            model.eval()
            out = model.forward(torch.from_numpy(seq), torch.from_numpy(lens))
            scores = out @ model.item_embedding.weight.T
            return scores[:, rb_item].numpy()

    valid = evaluate_ranking(RecBoleScorer([split.train]), split, relevance="all", k=K, on="valid").metrics
    test = evaluate_ranking(
        RecBoleScorer([split.train, split.valid]), split, relevance="all", k=K, on="test"
    ).metrics
    print(
        f"RecBole SASRec through rayrec's evaluator: valid NDCG@10 {valid['NDCG@10']:.4f} | "
        f"test NDCG@10 {test['NDCG@10']:.4f} HR@10 {test['HR@10']:.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["rayrec", "recbole"])
    parser.add_argument("--grid", action="store_true", help="search the grid on valid (rayrec mode)")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--stride", type=int, default=None, help="rayrec training stride (default: config)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--budget-s", type=float, default=float("inf"), help="recbole: stop training after this"
    )
    parser.add_argument("--checkpoint-dir", default="/tmp/recbole-saved")
    args = parser.parse_args()
    if args.mode == "rayrec":
        rayrec_mode(args)
    else:
        recbole_mode(args)


if __name__ == "__main__":
    main()
