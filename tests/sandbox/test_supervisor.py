"""The sandbox supervisor restarts a crashed process and counts it; stopping it stops its child, even by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infra.rollout.seams import MetricQuery
from infra.sandbox.restarts import SandboxRestarts
from infra.sandbox.supervisor import read_count


def wait_for(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition never held")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def supervise(tmp_path: Path, child_code: str) -> tuple[subprocess.Popen[bytes], Path]:
    count = tmp_path / "app-web-v9.restarts"
    proc = subprocess.Popen([sys.executable, "-m", "infra.sandbox.supervisor", "--restarts-file", str(count), "--",
                             sys.executable, "-c", child_code], stderr=subprocess.DEVNULL)
    return proc, count


def test_crashes_are_restarted_and_counted(tmp_path: Path) -> None:
    proc, count = supervise(tmp_path, "import sys; sys.exit(3)")
    try:
        wait_for(lambda: (read_count(count) or 0) >= 4)
        sample = SandboxRestarts(tmp_path).query(MetricQuery("restarts", "app-web-v9"))
        assert sample.count == 1 and sample.value >= 4
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_a_healthy_child_has_zero_restarts_and_stops_with_the_supervisor(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    proc, count = supervise(tmp_path, f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                                      "time.sleep(60)")
    wait_for(pidfile.exists)
    wait_for(lambda: pidfile.read_text().strip().isdigit())
    child = int(pidfile.read_text())
    assert read_count(count) == 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    wait_for(lambda: not alive(child), timeout=10)
    assert read_count(count) == 0, "a stop is not a restart"


def test_sigkill_of_the_supervisor_takes_the_child_with_it(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    proc, _ = supervise(tmp_path, f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                                  "time.sleep(60)")
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit())
    child = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: not alive(child), timeout=10)


def test_no_count_file_is_missing_data(tmp_path: Path) -> None:
    sample = SandboxRestarts(tmp_path).query(MetricQuery("restarts", "app-web-v1"))
    assert sample.count == 0
