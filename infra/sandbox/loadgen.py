"""A bounded, open-loop HTTP load generator for the sandbox: a fixed rate, loopback only, capped in requests and time.

Used by the demo, the end-to-end tests and the rollout-safety benchmark. It records every
request (time, status, which version answered, latency) so callers can chart traffic and count
the failed requests the canary served (the blast radius).
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from infra.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request: ``t`` seconds since the generator started; status 0 means no HTTP answer at all."""

    t: float
    status: int
    version: str
    latency_ms: float

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


@dataclass(frozen=True, slots=True)
class WindowStats:
    requests: int
    errors: int
    by_version: dict[str, int]
    errors_by_version: dict[str, int]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class LoadGenerator:
    """Sends GET ``url`` at ``rate_rps`` until ``max_requests`` or ``max_seconds``, whichever comes first."""

    def __init__(self, url: str, rate_rps: float = 200.0, max_requests: int = 100_000, max_seconds: float = 300.0,
                 workers: int = 48, timeout: float = 5.0, keep_records: bool = True) -> None:
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK or parts.scheme != "http" or parts.port is None:
            raise InputError(f"load target must be an http URL on 127.0.0.1 with a port, but {url!r} was given")
        if not 0 < rate_rps <= 5000:
            raise InputError(f"rate must be within (0, 5000] requests per second, but {rate_rps} was given")
        if max_requests < 1 or max_seconds <= 0:
            raise InputError(f"bounds must be positive, but {max_requests} requests / {max_seconds}s was given")
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path or "/"
        self.rate, self.max_requests, self.max_seconds = rate_rps, max_requests, max_seconds
        self.timeout = timeout
        self._records: list[RequestRecord] = []
        # A long-running generator (``gantry sandbox load``) keeps only totals, so its memory stays flat.
        self.keep_records = keep_records
        self.sent = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._jobs: queue.Queue[float | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._worker, daemon=True, name=f"load-{i}") for i in range(workers)]
        self._pacer = threading.Thread(target=self._pace, daemon=True, name="load-pacer")
        self.started_at = 0.0

    # ------------------------------------------------------------------ control

    def start(self) -> LoadGenerator:
        self.started_at = time.monotonic()
        for t in self._threads:
            t.start()
        self._pacer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pacer.join(timeout=2.0)
        for t in self._threads:
            t.join(timeout=self.timeout + 1.0)

    def wait(self, timeout: float | None = None) -> None:
        """Let the generator reach its bound, then wait for every scheduled request to finish."""
        self._pacer.join(timeout=timeout)
        for t in self._threads:
            t.join(timeout=self.timeout + 1.0)

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    # ------------------------------------------------------------------ results

    def totals(self) -> tuple[int, int]:
        """(requests answered or failed so far, failed ones): kept even when records are not."""
        with self._lock:
            return self.sent, self.failed

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def window(self, since: float, until: float | None = None) -> WindowStats:
        """Counts for requests started in [since, until) seconds after start."""
        recs = [r for r in self.records() if r.t >= since and (until is None or r.t < until)]
        by_version: dict[str, int] = {}
        errs: dict[str, int] = {}
        for r in recs:
            by_version[r.version] = by_version.get(r.version, 0) + 1
            if r.failed:
                errs[r.version] = errs.get(r.version, 0) + 1
        return WindowStats(len(recs), sum(errs.values()), by_version, errs)

    # ------------------------------------------------------------------ threads

    def _pace(self) -> None:
        # Open loop: requests are scheduled on a fixed clock, whatever the latency, like real users.
        period = 1.0 / self.rate
        sent = 0
        while not self._stop.is_set() and sent < self.max_requests:
            due = self.started_at + sent * period
            now = time.monotonic()
            if due - self.started_at >= self.max_seconds:
                break
            if due > now:
                time.sleep(due - now)
            self._jobs.put(due - self.started_at)
            sent += 1
        for _ in self._threads:
            self._jobs.put(None)

    def _worker(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            job = self._jobs.get()
            if job is None or self._stop.is_set():
                break
            began = time.monotonic()
            status, version = 0, "-"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(str(self.host), self.port, timeout=self.timeout)
                conn.request("GET", self.path)
                resp = conn.getresponse()
                resp.read()
                status, version = resp.status, resp.getheader("X-Version") or "-"
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            rec = RequestRecord(began - self.started_at, status, version, (time.monotonic() - began) * 1000.0)
            with self._lock:
                if self.keep_records:
                    self._records.append(rec)
                self.sent += 1
                self.failed += int(rec.failed)
        if conn is not None:
            conn.close()


def split_by_version(records: Sequence[RequestRecord]) -> dict[str, tuple[int, int]]:
    """{version: (requests, failed)} over a list of records."""
    out: dict[str, tuple[int, int]] = {}
    for r in records:
        n, f = out.get(r.version, (0, 0))
        out[r.version] = (n + 1, f + int(r.failed))
    return out
