"""The planner as an application builder, so a Serve config file (``serve deploy``, KubeRay's
``serveConfigV2``) can start it: ``import_path: rayrec.serve.planner_app:build`` with ``args`` holding
:class:`~rayrec.serve.planner.PlannerConfig`'s fields.

Serve hands a builder the config's ``args`` as a plain dict; ``planner.build_app`` takes a
``PlannerConfig``, so this adapter is the one place where the file's keys are checked. Config files:
``planner_config.yaml`` (CPU, the embedded model, any cluster) and ``planner_config.gpu.yaml`` (vLLM on
a gpu node, pinned there through the ``planner`` resource of ``rayrec.cluster_resources``).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ray import serve

from rayrec.errors import ConfigError
from rayrec.serve.planner import PlannerConfig, build_app

# Set by the config file's application entry (name, route_prefix), not by its args.
_APP_LEVEL = {"app_name", "route_prefix"}


def build(args: dict[str, Any]) -> serve.Application:
    """The planner app from a Serve config's ``args``; unknown or app-level keys are a ConfigError."""
    known = {f.name for f in fields(PlannerConfig)} - _APP_LEVEL
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(
            f"unknown planner args {unknown} in the Serve config; allowed: {sorted(known)} "
            "(set the app's name and route_prefix on the application entry itself)"
        )
    return build_app(PlannerConfig(**args))
