"""Shared CLI plumbing: consoles, output formats and the one way errors become exit codes."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

import typer

from infra.config import ConfigError
from infra.console import make_console, styled
from infra.errors import ExitCode, GantryError

if TYPE_CHECKING:
    from infra.render import RenderResult

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


def report_program_errors(results: Sequence[RenderResult], *, debug: bool) -> None:
    """Print each failed program's error (and with ``--debug`` its traceback); exit 2 if any failed."""
    failed = [r for r in results if r.error is not None]
    for result in failed:
        err.print(styled("[red]error:[/red] {}", result.error_message()))
        if debug and result.error is not None and result.error.traceback:
            err.print(result.error.traceback)
    if failed:
        if not debug:
            err.print(styled("[dim]run again with --debug for the program's traceback[/dim]"))
        raise typer.Exit(ExitCode.USAGE)
