"""Options and parsing shared by several commands, so each is spelled and parsed one way everywhere."""

from __future__ import annotations

import json
from collections.abc import Sequence

import typer

from rayrec.errors import ConfigError

# Every command that takes a dataset names it the same way.
DATASET_ARG = typer.Argument("ml-100k", help="dataset name (ml-100k, kuairec, kuairand, synthetic, csv)")
PATH_OPT = typer.Option(None, "--path", help="local copy of the dataset, where the name needs one")
OPTION_OPT = typer.Option(
    [], "--option", help="loader option key=value, repeatable (matrix=big, n_users=1000, …)"
)


def parse_key_values(items: list[str], flag: str, example: str) -> dict:
    """``key=value`` pairs; values are read as JSON (numbers, booleans) and fall back to strings."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes key=value (e.g. {example}), not {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def check_choice(value: str, valid: Sequence[str], flag: str) -> str:
    """``value`` if it is one of ``valid``; otherwise a ConfigError that lists the valid names.

    Values are snake_case (docs/cli.md); there is one spelling per value and no aliases.
    """
    if value not in valid:
        raise ConfigError(f"{flag} must be one of {', '.join(valid)}, not {value!r}")
    return value
