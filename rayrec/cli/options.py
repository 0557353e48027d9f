"""Parsing shared by commands that take free-form ``key=value`` options."""

from __future__ import annotations

import json

import typer

from rayrec.errors import ConfigError

# Every command that takes a dataset names it the same way.
DATASET_ARG = typer.Argument("ml-100k", help="dataset name (ml-100k, kuairec, kuairand, synthetic, csv)")
PATH_OPT = typer.Option(None, "--path", help="local copy of the dataset, where the name needs one")


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
