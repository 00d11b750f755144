"""Rollout errors, grouped by what the caller should do; Automation API errors are translated into these.

Raised by targets, the journal, the lock and the engine; mapped to exit codes by the CLI.
"""

from __future__ import annotations

from infra.errors import ExitCode, GantryError, InputError, PermanentError, TemporaryError


class StackLocked(TemporaryError):
    """Another rollout or update holds the stack; retry after its lease expires."""

    exit_code = ExitCode.LOCKED

    def __init__(self, stack: str, holder: str, host: str, pid: int | None, expires_at: str | None,
                 *, rollout_id: str | None = None) -> None:
        self.stack, self.holder, self.host, self.pid, self.expires_at = stack, holder, host, pid, expires_at
        self.rollout_id = rollout_id
        """The rollout the holder runs, when the holder is a rollout's lease."""
        lease = f", lease expires {expires_at}" if expires_at else ""
        who = f"{holder} on {host}" + (f" (pid {pid})" if pid is not None else "")
        super().__init__(f"stack {stack} is locked by {who}{lease}")


class StackNotFound(PermanentError):
    """The named stack does not exist in the workspace."""


class CommandFailed(GantryError):
    """A Pulumi operation failed; carries the tail of its stderr (secrets already masked)."""

    def __init__(self, operation: str, stderr_tail: str) -> None:
        self.operation = operation
        self.stderr_tail = stderr_tail
        super().__init__(f"pulumi {operation} failed: {stderr_tail}")


class MetricsUnavailable(TemporaryError):
    """A metrics provider could not answer; the analysis counts it as a failed check."""


class QuarantinedVersion(InputError):
    """The image was rolled back before; starting it again needs --force."""


class RollbackFailed(GantryError):
    """Restoring the last good state failed; an operator must follow the printed recovery steps."""

    exit_code = ExitCode.OPERATOR
