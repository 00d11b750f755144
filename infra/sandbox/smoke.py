"""Smoke test of a blue/green service's preview (the idle color) in the sandbox; run as a rollout step hook.

``gantry sandbox smoke --service api`` (the local stack's ``smoke`` hook) sends a short burst straight
to the idle color's process, then waits one scrape interval so the analysis that follows sees it in
Prometheus. Exit 0 iff every request answered 2xx. With no preview prepared it has nothing to test and passes.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from pathlib import Path

from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.procs import SandboxError
from infra.sandbox.state import SandboxState, require, sandbox_dir


@dataclass(frozen=True, slots=True)
class SmokeResult:
    target: str | None
    requests: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.failed == 0


def preview_port(st: SandboxState, service: str) -> int | None:
    """The port of the color that holds a version but takes no traffic (None when there is none)."""
    if service not in st.services:
        raise SandboxError(f"service must be one of {', '.join(sorted(st.services))}, but {service!r} was given")
    weights = RuntimeApi(Path(st.haproxy_socket)).weights(st.backend(service))
    for name, slot in st.services[service].slots.items():
        if slot is not None and weights.get(name, 0) == 0:
            return slot.port
    return None


def smoke(project_dir: Path, service: str, requests: int = 150, rate_rps: float = 100.0,
          settle_seconds: float = 1.5) -> SmokeResult:
    st = require(sandbox_dir(project_dir))
    port = preview_port(st, service)
    if port is None:
        return SmokeResult(None, 0, 0)
    failed = 0
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    for i in range(requests):
        due = started + i / rate_rps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            failed += int(resp.status >= 400)
            if resp.getheader("Connection", "").lower() == "close" or resp.version == 10:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
        except (OSError, http.client.HTTPException):
            failed += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    conn.close()
    # Let Prometheus scrape the burst (1 s interval) before the analysis that follows this hook queries it.
    time.sleep(settle_seconds)
    return SmokeResult(f"127.0.0.1:{port}", requests, failed)
