"""Discovery: import the built-in backend modules (each registers itself once) and any installed plugins.

Command layer: the CLI, the Pulumi program and the tests' session call ``load()`` before any stack config
is parsed, so config validates against every registered backend. A backend outside Gantry registers the
same way from its own module, named by an entry point in the ``gantry.plugins`` group.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

BUILTIN = (
    "infra.rollout.pulumi_backend",
    "infra.rollout.metrics.prometheus",
    "infra.rollout.metrics.http",
    "infra.rollout.metrics.cloudwatch",
    "infra.rollout.metrics.kubernetes",
    "infra.rollout.metrics.command",
    "infra.rollout.metrics.datadog",
    "infra.rollout.metrics.noop",
    "infra.rollout.notify",
    "infra.rollout.hooks",
    "infra.sandbox.settings",
    "infra.sandbox.backends",
)
"""Modules that register Gantry's own backends (and the sandbox's config section)."""

ENTRY_POINT_GROUP = "gantry.plugins"
_loaded = [False]


def load() -> None:
    """Import every backend module once; later calls do nothing."""
    if _loaded[0]:
        return
    for name in BUILTIN:
        importlib.import_module(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    _loaded[0] = True
