"""Run an argv (never a shell) with a timeout that kills the whole process group, so nothing is orphaned.

Used by the command metrics provider and command hooks: a script that starts its own children
(``sleep`` in a shell script, a curl retry loop) must not outlive its timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from infra.errors import TemporaryError


class Timeout(TemporaryError):
    """The command ran past its timeout; it and its children were killed."""


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_argv(argv: Sequence[str], *, timeout: float, stdin: str | None = None,
             env: Mapping[str, str] | None = None, cwd: str | None = None) -> Completed:
    """Run ``argv`` in its own session; on timeout SIGKILL its process group. Raises OSError, Timeout."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(env) if env is not None else None, cwd=cwd, shell=False,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        # The child leads its own process group (new session): kill the group, grandchildren included.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise Timeout(f"timed out after {timeout:g}s") from None
    return Completed(proc.returncode, stdout, stderr)
