"""Process plumbing for the sandbox: binaries, free ports, detached starts, pid files checked before a kill.

Used by the sandbox lifecycle and ``HaproxyTarget``. Every process is started with its sandbox
directory in its argv, so a pid is only signalled when ``/proc/<pid>/cmdline`` still names that
directory: a recycled pid belonging to someone else is never touched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from infra.errors import InputError

INSTALL_HINT = {
    "haproxy": "sudo apt-get install -y haproxy",
    "prometheus": "sudo apt-get install -y prometheus",
}
_SEARCH = {"haproxy": ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy"), "prometheus": ("/usr/bin/prometheus",)}


class MissingBinary(InputError):
    """A sandbox part is not installed; the message carries the install command."""


class SandboxError(InputError):
    """The sandbox is not in a state the command needs (not up, already up, a part failed to start)."""


def find_binary(name: str) -> str:
    """Absolute path of ``haproxy`` or ``prometheus``; one-line error with the install command if absent."""
    found = shutil.which(name)
    if found is None:
        found = next((p for p in _SEARCH.get(name, ()) if os.access(p, os.X_OK)), None)
    if found is None:
        hint = INSTALL_HINT.get(name, f"install {name}")
        raise MissingBinary(f"{name} is not installed; install it with: {hint}")
    return found


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cmdline(pid: int) -> list[str]:
    """The argv of a live process, or [] if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive and its argv mentions ``marker`` (the sandbox directory)."""
    return any(marker in part for part in cmdline(pid))


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (its argv may still be empty just after exec)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def spawn(argv: Sequence[str], log: Path, pidfile: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> int:
    """Start ``argv`` in its own session (it outlives the caller) and record its pid before returning."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env, start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    # The child is deliberately not waited for here; reap it if it exits while we are still alive.
    _reapers.append(proc)
    return proc.pid


_reapers: list[subprocess.Popen[bytes]] = []


def reap() -> None:
    """Collect exit statuses of children we started, so they do not linger as zombies."""
    for proc in list(_reapers):
        if proc.poll() is not None:
            _reapers.remove(proc)


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def stop_pid(pid: int, marker: str, timeout: float = 5.0) -> bool:
    """SIGTERM then SIGKILL ``pid`` if it is still ours. Returns True if something was stopped."""
    if not is_ours(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        if not alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while alive(pid) and time.monotonic() < deadline:
        reap()
        time.sleep(0.05)
    return True


def stop_pidfile(pidfile: Path, marker: str) -> bool:
    """Stop the process named by a pid file (verified) and remove the file."""
    pid = read_pid(pidfile)
    stopped = stop_pid(pid, marker) if pid is not None else False
    pidfile.unlink(missing_ok=True)
    return stopped


def tagged(marker: str, flag: str, value: str) -> list[int]:
    """Live processes of this sandbox (``marker`` in argv) whose argv holds ``flag value``.

    ``Popen`` returns only after the child's ``exec``, so a child is findable this way from the moment
    its parent could have recorded anything about it.
    """
    me = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        argv = cmdline(int(entry.name))
        if any(marker in part for part in argv) and any(
                a == flag and b == value for a, b in itertools.pairwise(argv)):
            found.append(int(entry.name))
    return found


def rotate(log: Path, max_bytes: int, keep: int) -> None:
    """Rotate ``log`` to ``log.1`` .. ``log.<keep>`` once it holds ``max_bytes`` or more (oldest dropped)."""
    try:
        if log.stat().st_size < max_bytes:
            return
    except FileNotFoundError:
        return
    log.with_name(f"{log.name}.{keep}").unlink(missing_ok=True)
    for i in range(keep - 1, 0, -1):
        older = log.with_name(f"{log.name}.{i}")
        if older.exists():
            os.replace(older, log.with_name(f"{log.name}.{i + 1}"))
    os.replace(log, log.with_name(f"{log.name}.1"))


def sweep(marker: str) -> list[int]:
    """Stop every process whose argv names ``marker``: catches children whose pid file a crash never wrote."""
    me = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid != me and alive(pid) and is_ours(pid, marker):
            found.append(pid)
    for pid in found:
        stop_pid(pid, marker)
    return found


def wait_port(port: int, timeout: float, pid: int | None = None) -> bool:
    """Wait until 127.0.0.1:port accepts connections; False on timeout or if ``pid`` died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        if pid is not None and not alive(pid):
            return False
        reap()
        time.sleep(0.05)
    return False
