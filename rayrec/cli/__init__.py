"""The one ``rayrec`` command. The only module that knows every layer; each area adds a sub-app here.

User errors (``RayrecError``) print as one red line and exit 2, never as a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from rayrec.cli.assets_cmds import assets_app
from rayrec.cli.console import console
from rayrec.cli.data_cmds import data_app
from rayrec.cli.demo_cmd import demo
from rayrec.cli.eval_cmds import evaluate_baselines
from rayrec.cli.llm_cmds import llm_app
from rayrec.cli.planner_cmds import planner_app
from rayrec.cli.sim_cmds import simulate, simulator_app
from rayrec.errors import RayrecError

app = typer.Typer(
    name="rayrec",
    help="LLM-enhanced RL recommenders (LAAC, LERL) on Ray: data, simulator, planner, training, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(assets_app, name="assets")
app.add_typer(data_app, name="data")
app.add_typer(planner_app, name="planner")
app.add_typer(llm_app, name="llm")
app.command("evaluate-baselines")(evaluate_baselines)
app.command("demo")(demo)
app.add_typer(simulator_app, name="simulator")
app.command("simulate")(simulate)


def main() -> None:
    try:
        rc = app(standalone_mode=False)
    except RayrecError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)
