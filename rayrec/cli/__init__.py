"""The one ``rayrec`` command. The only module that knows every layer; each area adds a sub-app here.

Sub-commands load lazily: ``rayrec --help`` and ``rayrec assets list`` never import torch, Ray or
pandas, and a command only pays for the layers it uses. Every command runs through :func:`main`,
which turns a user error (``RayrecError``, a bad option, an unknown command) into one line on stderr
and exit code 2, never a traceback. Bugs still show their traceback.

Naming (docs/cli.md): commands and options are kebab-case, the values they take are snake_case
(the same strings the Python API and the run records use).
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer.core import TyperCommand, TyperGroup

# The click that typer runs on: recent typer vendors its own copy (typer._click), older typer uses the
# click package. Its exceptions must be caught from that copy, so find it through a class typer exports.
_click_exc = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click_exc, "NoArgsIsHelpError", ())

# name -> (module, attribute, one-line help shown by `rayrec --help`). The attribute is a typer
# sub-app (a command group) or a plain function (a single command). The help line is repeated here
# so that listing the commands imports nothing.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "assets": (
        "rayrec.cli.assets_cmds",
        "assets_app",
        "The embedded dataset and model: fetch into the cache, list, verify.",
    ),
    "data": ("rayrec.cli.data_cmds", "data_app", "Datasets: summary statistics and train/valid/test splits."),
    "simulator": ("rayrec.cli.sim_cmds", "simulator_app", "User simulator: fit its response model."),
    "simulate": (
        "rayrec.cli.sim_cmds",
        "simulate",
        "Run a reference policy in the simulator: long-term metrics with 95% intervals.",
    ),
    "evaluate-baselines": (
        "rayrec.cli.eval_cmds",
        "evaluate_baselines",
        "Offline ranking of the popularity and random baselines: accuracy, diversity, novelty at k.",
    ),
    "planner": (
        "rayrec.cli.planner_cmds",
        "planner_app",
        "The shared LLM planner (Ray Serve): start, inspect, stop.",
    ),
    "llm": ("rayrec.cli.llm_cmds", "llm_app", "LLM backends: score allowed answers, generate text."),
    "train": ("rayrec.cli.train_cmds", "train_app", "Train LAAC or LERL: checkpoint, metrics, curves."),
    "study": ("rayrec.cli.study_cmds", "study_app", "Studies of LAAC or LERL: tables and plots."),
    "tune": ("rayrec.cli.tune_cmds", "tune_app", "Hyperparameter sweeps (Ray Tune: ASHA + Optuna)."),
    "serve": ("rayrec.cli.serve_cmds", "serve", "Serve a trained policy over HTTP (POST /recommend)."),
    "demo": (
        "rayrec.cli.demo_cmd",
        "demo",
        "The embedded demo: offline baselines, then the simulator's reference policies.",
    ),
}


def load_command(name: str) -> TyperCommand | TyperGroup:
    """Import the module behind ``name`` and build its click command, as ``add_typer``/``command`` would."""
    module, attr, _ = LAZY_COMMANDS[name]
    target = getattr(importlib.import_module(module), attr)
    parent = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    parent.callback()(lambda: None)  # always a group, so the entry is found by name below
    if isinstance(target, typer.Typer):
        parent.add_typer(target, name=name)
    else:
        parent.command(name)(target)
    return typer.main.get_command(parent).commands[name]


class LazyGroup(TyperGroup):
    """Lists commands from ``LAZY_COMMANDS`` without importing them; imports one only to run it."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY_COMMANDS if n not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | None:
        if cmd_name in self.commands or cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        # A placeholder carrying the help line: enough for listing, help and name resolution.
        return TyperCommand(name=cmd_name, callback=None, help=LAZY_COMMANDS[cmd_name][2])

    def resolve_command(
        self, ctx: typer.Context, args: list[str]
    ) -> tuple[str | None, TyperCommand | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if name in LAZY_COMMANDS and name not in self.commands:
            cmd = self.commands[name] = load_command(name)
        return name, cmd, rest


app = typer.Typer(
    name="rayrec",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """LLM-enhanced RL recommenders (LAAC, LERL) on Ray: data, simulator, planner, training, serving."""


def _user_error(exc: BaseException) -> BaseException | None:
    """The ``RayrecError`` behind ``exc``, also when a Ray task or actor raised it remotely."""
    from rayrec.errors import RayrecError

    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError / RayActorError wrap the original
    if isinstance(cause, BaseException) and cause is not exc:
        return _user_error(cause)
    return exc if isinstance(exc, RayrecError) else None


def _fail(message: str) -> None:
    from rich.markup import escape

    from rayrec.cli.console import err_console

    # One line (newlines collapsed, no wrapping), so scripts can grep it; escaped, so "[x]" survives.
    text = escape(" ".join(message.split()))
    err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rayrec`` console script."""
    try:
        rc = app(args=argv, prog_name="rayrec", standalone_mode=False)
    except _NoArgsIsHelp as exc:  # `rayrec` or `rayrec data` alone: the help, as with --help
        exc.show()
        sys.exit(0)
    except _click_exc.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(exc.format_message() + hint)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except _click_exc.ClickException as exc:  # e.g. a file option that cannot be opened
        _fail(exc.format_message())
    except Exception as exc:
        user = _user_error(exc)
        if user is None:
            raise
        _fail(str(user))
    sys.exit(rc if isinstance(rc, int) else 0)
