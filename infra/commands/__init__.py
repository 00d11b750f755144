"""CLI command groups; each module owns its commands and exposes ``register(app)``.

Modules import heavy libraries (pulumi providers, httpx, boto3) inside command bodies so that
``gantry --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

MODULES = ("core", "check", "rollout", "promote", "plan", "sandbox", "report", "dr")


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        module = importlib.import_module(f"infra.commands.{name}")
        module.register(app)
