"""Steady traffic for the sandbox: one supervised load-generator process per service, started and stopped by Gantry.

Called by ``gantry sandbox up`` (unless ``--no-load``), ``gantry sandbox load --rps N | --stop`` and
``gantry sandbox status``. Each generator runs as ``python -m infra.sandbox.traffic`` in its own session,
under ``infra.sandbox.supervisor`` (restarted if it dies), with its pid file (``load-<service>.pid``) in the
sandbox directory and that directory in its argv, so
``gantry sandbox down`` stops it like any other sandbox process (pid verified against its argv; strays swept)
and never touches a process it did not start. Every second it writes its rate and totals to
``load-<service>.json``, which ``status`` reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from infra.sandbox import procs
from infra.sandbox.loadgen import LoadGenerator
from infra.sandbox.procs import SandboxError
from infra.sandbox.state import locked, marker_for, require, sandbox_dir

MAX_RPS = 2000.0
"""The same bound as ``gantry:sandbox.rateRps``."""
START_TIMEOUT = 10.0
REPORT_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class LoadStatus:
    """One service's generator as its status file and its pid say."""

    service: str
    pid: int | None
    running: bool
    rps: float
    requests: int
    failed: int


def check_rps(rps: float, field: str = "--rps") -> float:
    """``rps`` if it is a usable rate; an InputError naming ``field`` otherwise."""
    if not (math.isfinite(rps) and 0 < rps <= MAX_RPS):
        raise SandboxError(f"{field} must be a rate in (0, {MAX_RPS:g}] requests per second, but {rps:g} was given")
    return rps


def _pidfile(directory: Path, service: str) -> Path:
    return directory / f"load-{service}.pid"


def _statusfile(directory: Path, service: str) -> Path:
    return directory / f"load-{service}.json"


def _env() -> dict[str, str]:
    from infra.sandbox.lifecycle import REPO_ROOT

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _stop_locked(directory: Path) -> list[str]:
    marker = marker_for(directory)
    stopped: list[str] = []
    for pidfile in sorted(directory.glob("load-*.pid")):
        if procs.stop_pidfile(pidfile, marker):
            stopped.append(pidfile.stem)
    for status in directory.glob("load-*.json"):
        status.unlink(missing_ok=True)
    return stopped


def start(project: Path, rps: float) -> list[str]:
    """(Re)start one generator per sandbox service at ``rps``; returns the services loaded."""
    check_rps(rps)
    directory = sandbox_dir(project)
    with locked(directory):
        st = require(directory)
        _stop_locked(directory)
        started: list[tuple[str, int]] = []
        for service in sorted(st.services):
            status = _statusfile(directory, service)
            # Under the sandbox's supervisor, like the demo versions: a generator that dies is restarted (and
            # counted in load-<service>.restarts); SIGTERM to the recorded pid stops both.
            argv = [sys.executable, "-m", "infra.sandbox.supervisor", "--restarts-file",
                    str(directory / f"load-{service}.restarts"), "--",
                    sys.executable, "-m", "infra.sandbox.traffic", "--url", st.frontend_url(service),
                    "--rps", f"{rps:g}", "--status", str(status), "--service", service]
            pid = procs.spawn(argv, directory / f"load-{service}.log", _pidfile(directory, service),
                              cwd=directory, env=_env())
            started.append((service, pid))
        deadline = time.monotonic() + START_TIMEOUT
        for service, pid in started:
            # Up once it has reported: a generator that dies at start (bad URL, import error) is an error now.
            while not _statusfile(directory, service).is_file():
                if not procs.alive(pid) or time.monotonic() > deadline:
                    _stop_locked(directory)
                    raise SandboxError(f"the load generator for {service} did not start: "
                                       f"{procs_tail(directory / f'load-{service}.log')}")
                time.sleep(0.05)
    return [service for service, _ in started]


def stop(project: Path) -> list[str]:
    """Stop the sandbox's generators (only the pids we recorded, verified); returns what was stopped."""
    directory = sandbox_dir(project)
    if not directory.is_dir():
        return []
    with locked(directory):
        return _stop_locked(directory)


def status(project: Path) -> dict[str, LoadStatus]:
    """Each service's generator: configured rate and totals so far (``running`` False if its process is gone)."""
    directory = sandbox_dir(project)
    marker = marker_for(directory)
    found: dict[str, LoadStatus] = {}
    for pidfile in sorted(directory.glob("load-*.pid")) if directory.is_dir() else []:
        service = pidfile.stem.removeprefix("load-")
        pid = procs.read_pid(pidfile)
        try:
            doc = json.loads(_statusfile(directory, service).read_text())
        except (OSError, ValueError):
            doc = {}
        found[service] = LoadStatus(service, pid, pid is not None and procs.is_ours(pid, marker),
                                    float(doc.get("rps", 0.0)), int(doc.get("requests", 0)),
                                    int(doc.get("failed", 0)))
    return found


def procs_tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------- the generator process


def _write(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra.sandbox.traffic")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rps", type=float, required=True)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--service", required=True)
    args = parser.parse_args(argv)
    check_rps(args.rps)
    gen = LoadGenerator(args.url, rate_rps=args.rps, max_requests=sys.maxsize, max_seconds=math.inf,
                        workers=32, timeout=5.0, keep_records=False)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    gen.start()
    while True:
        sent, failed = gen.totals()
        _write(args.status, {"service": args.service, "url": args.url, "rps": args.rps, "requests": sent,
                             "failed": failed, "updated": time.time()})
        if done.wait(REPORT_EVERY):
            break
    gen.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
