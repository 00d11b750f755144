"""The one place Automation API errors become Gantry errors; ``PulumiStackTarget`` wraps every call with it.

``ConcurrentUpdateError`` -> ``StackLocked``, ``StackNotFoundError`` -> ``StackNotFound``,
any other ``CommandError`` -> ``CommandFailed`` carrying the masked tail of stderr.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from pulumi.automation import errors as auto_errors

from infra.errors import GantryError
from infra.rollout.errors import CommandFailed, StackLocked, StackNotFound
from infra.rollout.masking import Masker

T = TypeVar("T")

STDERR_TAIL_LINES = 20

# The CommandError message is str(CommandResult): "\n code: N\n stdout: ...\n stderr: ...".
_STDERR = re.compile(r"\n stderr: (?P<stderr>.*)\Z", re.DOTALL)
# The file backend says "the stack is currently locked by 1 lock(s): <url>: created by user@host (pid 123) at <ts>".
_LOCK_HOLDER = re.compile(r"created by (?P<who>[^@\s]+)@(?P<host>\S+) \(pid (?P<pid>\d+)\)(?: at (?P<at>[^\n]+))?")


def stderr_of(error: BaseException) -> str:
    """The stderr text of a CommandError (empty if the message carries none)."""
    match = _STDERR.search(str(error))
    return match["stderr"] if match else str(error)


def stderr_tail(error: BaseException, masker: Masker | None = None, lines: int = STDERR_TAIL_LINES) -> str:
    text = "\n".join(stderr_of(error).strip().splitlines()[-lines:])
    return (masker or Masker()).mask(text)


def translate(error: BaseException, stack: str, operation: str, secrets: Iterable[str] = ()) -> GantryError:
    """Map one Automation API exception to the Gantry error the caller should act on."""
    masker = Masker(secrets)
    if isinstance(error, GantryError):
        return error
    if isinstance(error, auto_errors.ConcurrentUpdateError):
        holder = _LOCK_HOLDER.search(stderr_of(error))
        if holder:
            return StackLocked(stack, holder["who"], holder["host"], int(holder["pid"]), None)
        return StackLocked(stack, "another pulumi update", "unknown host", None, None)
    if isinstance(error, auto_errors.StackNotFoundError):
        return StackNotFound(f"stack must exist in the workspace, but {stack!r} was given "
                             f"(create it with `pulumi stack init {stack}`)")
    if isinstance(error, auto_errors.CommandError):
        return CommandFailed(operation, stderr_tail(error, masker))
    if isinstance(error, FileNotFoundError) and "pulumi" in str(error):
        return CommandFailed(operation, "the pulumi CLI must be on PATH, but it was not found "
                                        "(install it, or set PATH to include it)")
    return CommandFailed(operation, masker.mask(f"{type(error).__name__}: {error}"))


def call(stack: str, operation: str, fn: Callable[[], T], secrets: Iterable[str] = ()) -> T:
    """Run ``fn`` and translate whatever the Automation API raises."""
    try:
        return fn()
    except GantryError:
        raise
    except auto_errors.CommandError as exc:
        raise translate(exc, stack, operation, secrets) from exc
    except (OSError, ValueError, RuntimeError) as exc:
        # The CLI missing or unparsable output: still a failed command, not a traceback.
        raise translate(exc, stack, operation, secrets) from exc
