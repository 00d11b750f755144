"""Shared CLI plumbing: consoles, output formats and the one way errors become exit codes."""

from __future__ import annotations

import gc
import json
import sys
from enum import StrEnum
from typing import NoReturn

import typer

from infra.config import ConfigError
from infra.console import make_console, styled
from infra.errors import ExitCode, GantryError

# Markup and emoji codes are off: nothing a user wrote is ever read as a style (see infra.console).
out = make_console()
err = make_console(stderr=True)


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
            err.print(styled("[red]error:[/red] {}", line))
        raise typer.Exit(ExitCode.USAGE)
    if isinstance(exc, GantryError):
        err.print(styled("[red]error:[/red] {}", " ".join(str(exc).split())))
        raise typer.Exit(exc.exit_code)
    raise exc
