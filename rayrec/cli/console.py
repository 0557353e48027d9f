"""Shared rich consoles and table helpers, so every command prints results the same way.

Results go to stdout (``console``); errors go to stderr (``err_console``), so a pipe gets only results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def render_table(title: str, rows: Sequence[Mapping[str, object]], float_fmt: str = "{:.4f}") -> Table:
    """A rich table from a list of dicts (columns in the first row's key order)."""
    table = Table(title=title, show_lines=False)
    if not rows:
        return table
    cols = list(rows[0].keys())
    for c in cols:
        table.add_column(str(c), justify="left" if c == cols[0] else "right")
    for r in rows:
        table.add_row(
            *[float_fmt.format(v) if isinstance(v, float) else str(v) for v in (r.get(c) for c in cols)]
        )
    return table


def render_comparison(
    title: str, results: Mapping[str, Mapping[str, object]], float_fmt: str = "{:.4f}"
) -> Table:
    """Methods as columns, metrics as rows: stays readable in 80 columns however many metrics there are."""
    methods = list(results)
    metrics = list(results[methods[0]]) if methods else []
    rows = [{"metric": m, **{name: results[name][m] for name in methods}} for m in metrics]
    return render_table(title, rows, float_fmt)
