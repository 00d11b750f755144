"""Shared CLI plumbing: consoles, output formats and the one way errors become exit codes."""

from __future__ import annotations

import gc
import json
import sys
from enum import StrEnum
from typing import NoReturn

import typer
from rich.console import Console

from infra.config import ConfigError
from infra.errors import ExitCode, GantryError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def short_lived() -> None:
    """Turn the cyclic GC off for a bounded, offline command (render, check, stacks).

    Those commands import the provider SDKs (thousands of classes) and exit within seconds; the
    collector finds almost nothing to free yet costs about a fifth of their CPU. Long-running
    commands (rollouts, the sandbox) never call this.
    """
    gc.disable()


def emit_json(document: object) -> None:
    """Machine output: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def fail(exc: BaseException) -> NoReturn:
    """Print a one-line error per problem (never a traceback) and exit with the documented code."""
    if isinstance(exc, ConfigError):
        for line in str(exc).splitlines():
            err.print(f"[red]error:[/red] {line}", markup=True, highlight=False)
        raise typer.Exit(ExitCode.USAGE)
    if isinstance(exc, GantryError):
        err.print(f"[red]error:[/red] {_escape(exc)}")
        raise typer.Exit(exc.exit_code)
    raise exc


def _escape(exc: BaseException) -> str:
    from rich.markup import escape

    return escape(" ".join(str(exc).split()))
