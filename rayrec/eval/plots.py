"""PNG plots written into run directories. Agg backend: no display on servers or in CI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def metric_bars(
    results: Mapping[str, Mapping[str, float]], metrics: Sequence[str], path: str | Path, title: str
) -> Path:
    """One panel per metric, one bar per method: accuracy and diversity side by side at a glance."""
    n = len(metrics)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    methods = list(results)
    for ax, metric in zip(axes.flat, metrics):
        values = [results[m][metric] for m in methods]
        ax.bar(methods, values, color=[f"C{i}" for i in range(len(methods))])
        ax.set_title(metric, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def curves(
    series: Mapping[str, Sequence[float]], path: str | Path, title: str, xlabel: str, ylabel: str
) -> Path:
    """Learning curves (one line per series) for training runs."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in series.items():
        ax.plot(range(1, len(ys) + 1), ys, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
