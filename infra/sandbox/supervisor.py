"""Restarts a sandbox demo process when it dies and counts the restarts, as a kubelet does for a container.

Started by the sandbox lifecycle as ``python -m infra.sandbox.supervisor --restarts-file F -- <demo argv>``;
its pid is the one the sandbox records and stops (SIGTERM stops the child, then the supervisor). The
count in ``F`` (written atomically, starting at 0) is what the sandbox's restarts gate reads, the way
a cluster's gate reads ``restartCount``. Restarts back off exponentially (0.05 s doubling to 0.5 s), like
Kubernetes' CrashLoopBackOff on a compressed time scale (the sandbox's steps last seconds, not minutes),
so a crashing version cannot spin the machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

BACKOFF_START = 0.05
BACKOFF_MAX = 0.5


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the supervisor dies, even by SIGKILL (Linux prctl)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def write_count(path: Path, count: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{count}\n")
    os.replace(tmp, path)


def read_count(path: Path) -> int | None:
    """The restarts recorded in ``path``; None when no supervisor wrote it."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra.sandbox.supervisor")
    parser.add_argument("--restarts-file", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to supervise must follow --")
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts, backoff = 0, BACKOFF_START
    write_count(args.restarts_file, restarts)
    while True:
        started = time.monotonic()
        # preexec_fn is safe here: the supervisor is single-threaded.
        child = subprocess.Popen(command, preexec_fn=_die_with_parent)
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries wait() itself
                continue
        if stopping:
            return 0
        restarts += 1
        write_count(args.restarts_file, restarts)
        sys.stderr.write(f"supervisor: child exited with {code}; restart {restarts} in {backoff:.1f}s\n")
        sys.stderr.flush()
        deadline = time.monotonic() + backoff
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if stopping:
            return 0
        # A child that ran for a while resets the back-off, as the kubelet does after ten minutes of running.
        backoff = BACKOFF_START if time.monotonic() - started > 30 else min(BACKOFF_MAX, backoff * 2)


if __name__ == "__main__":
    sys.exit(main())
