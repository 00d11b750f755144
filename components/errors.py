"""Gantry's error tree and the CLI's stable exit codes; every layer raises these, the CLI maps them.

Errors are grouped by what the caller should do, as kopf does: fix the input, retry later, or call an operator.
The tree lives in the bottom layer so components (``SpecError``, ``ImageRefError``) can join it;
``infra.errors`` re-exports it for everything above.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable, documented process exit codes."""

    OK = 0
    """Success: rendered, no mandatory findings, or promoted."""
    FAILED = 1
    """Findings, or the rollout was rolled back."""
    USAGE = 2
    """Usage, input or program error: fix the input."""
    LOCKED = 3
    """The stack is locked by another rollout."""
    OPERATOR = 4
    """The rollback itself failed: an operator must act."""


class GantryError(Exception):
    """Root of every error Gantry raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED


class PermanentError(GantryError):
    """Retrying will not help: the input, the program or the state must change first."""

    exit_code = ExitCode.USAGE


class TemporaryError(GantryError):
    """Retrying later may succeed (a lock, a flaky backend)."""


class InputError(PermanentError):
    """Bad user input: a flag, a file, a config value."""


class ProgramError(PermanentError):
    """The Pulumi program itself raised."""
