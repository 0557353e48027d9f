"""``rayrec demo`` (what ``make demo`` runs) end to end on the embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rayrec.cli import app


def test_demo_prints_both_tables_and_records_the_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--episodes", "200"])
    assert result.exit_code == 0, result.output
    for text in ("offline baselines", "HR@10", "reference policies", "R_tra", "round_robin"):
        assert text in result.output
    (run,) = list(tmp_path.iterdir())
    assert run.name.startswith("demo-ml-100k-")
    files = {p.name for p in run.iterdir()}
    assert {"config.json", "versions.json", "metrics.json", "simulator.json"} <= files
    assert {"baselines.png", "simulator.png"} <= files
    sim = json.loads((run / "simulator.json").read_text())
    assert set(sim["results"]) == {"random", "popularity", "greedy", "round_robin"}
    # The diverse policy outlasts the repetitive ones under the default (DORL) quit model.
    lengths = {p: r["Len"] for p, r in sim["results"].items()}
    assert lengths["round_robin"] > max(lengths["popularity"], lengths["greedy"])
