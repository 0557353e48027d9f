"""The offline baseline table: load a dataset, split it, fit every baseline, evaluate, record the run.

Library code, so that ``rayrec evaluate-baselines``, ``rayrec demo`` and scripts share one path (the
CLI only parses options and prints). Evaluation is ``rayrec.eval.evaluate_ranking`` with the dataset's
relevance rule (``rayrec.data.default_relevance``) unless one is given, and the rule is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from rayrec.algorithms.baselines.recommender import Recommender
from rayrec.algorithms.baselines.simple import PopularityRecommender, RandomRecommender
from rayrec.data import check_split_name, default_relevance, load_dataset, split_dataset
from rayrec.errors import ConfigError
from rayrec.eval import Relevance, evaluate_ranking
from rayrec.eval.plots import metric_bars
from rayrec.rundir import RunDir

# The baselines every offline table shows (popularity first: it is the one a method must beat).
BASELINES: dict[str, type[Recommender]] = {
    "popularity": PopularityRecommender,
    "random": RandomRecommender,
}
PLOTTED = ("HR@{k}", "NDCG@{k}", "ILD@{k}", "coverage", "tail_share", "novelty", "gini", "cat_entropy")
def run_baselines(
    dataset: str,
    path: Path | None = None,
    split: str = "leave_last_out",
    k: int = 10,
    seed: int = 0,
    out: Path = Path("runs"),
    run_name: str = "baselines",
    *,
    options: Mapping[str, object] | None = None,
    split_options: Mapping[str, object] | None = None,
    relevance: str | None = None,
    head_fraction: float = 0.2,
    log: Callable[[str], object] | None = None,
) -> tuple[dict[str, dict[str, float]], RunDir]:
    """Fit every baseline on the split's train part, rank the full catalog, write the run directory.

    options: loader options (``load_dataset``); split_options: the split's (``n_valid``, ``n_test`` or
    ``valid_frac``, ``test_frac``); relevance: ``all`` or ``rating>=X``, default the dataset's;
    log: where to say which relevance rule was used and how many users it leaves (e.g. print).

    The run directory holds config.json (with the relevance rule), metrics.json (one dict per
    baseline), evaluation.json (rule, users ranked and evaluated, head/tail source) and baselines.png.
    """
    if not 0.0 <= head_fraction <= 1.0:
        raise ConfigError(f"head_fraction={head_fraction} must lie in [0, 1] (0.2 = the top 20% of items)")
    check_split_name(split)  # fail before loading
    given = Relevance.parse(relevance) if relevance is not None else None
    ds = load_dataset(dataset, path, **dict(options or {}))
    rule = given if given is not None else Relevance.parse(default_relevance(ds))
    source = "given" if given is not None else "dataset default"
    parts = split_dataset(ds, split, split_options)
    results: dict[str, dict[str, float]] = {}
    info: dict[str, object] = {}
    for name, cls in BASELINES.items():
        rec = cls(seed=seed) if name == "random" else cls()
        result = evaluate_ranking(
            rec.fit(parts.train),
            parts,
            relevance=rule,
            k=k,
            head_fraction=head_fraction,
            progress=True,
            name=name,
        )
        results[name] = result.metrics
        info = {**result.info(), "relevance_source": source}
    config = {
        "dataset": dataset,
        "path": path,
        "options": dict(options or {}),
        "split": split,
        "split_options": dict(split_options or {}),
        "k": k,
        "relevance": str(rule),
        "relevance_source": source,
        "head_fraction": head_fraction,
    }
    run = RunDir(out, f"{run_name}-{dataset}", config, seed)
    run.write_json("metrics.json", results)
    run.write_json("evaluation.json", info)
    if log is not None:
        log(
            f"relevance: {rule} ({source}); {info['users_evaluated']} of {info['users_ranked']} ranked users "
            "have a relevant test item and the accuracy metrics average over them"
        )
    metric_bars(results, [m.format(k=k) for m in PLOTTED], run.file("baselines.png"), f"{dataset} baselines")
    return results, run
