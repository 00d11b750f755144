"""The sandbox's demo HTTP service: one process per version, with a fault profile and Prometheus metrics.

Started by the sandbox lifecycle and by ``HaproxyTarget.prepare`` as
``python -m infra.sandbox.demoapp --version v1 --port P [--error-rate R --latency-ms L --crash-after N]``.
Endpoints: ``/`` (the work, subject to faults), ``/healthz``, ``/ready``, ``/metrics`` and a loopback-only
``POST /admin/fault`` that the ``gantry sandbox fault`` command uses to change the profile live.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)


@dataclass(slots=True)
class FaultProfile:
    """How badly a version behaves: share of 500s, extra latency, and a crash after N requests (0: never)."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    crash_after: int = 0


class DemoApp:
    """State shared by the request handlers: version, faults, counters and the metrics registry."""

    def __init__(self, version: str, faults: FaultProfile, seed: int | None = None, region: str = "primary",
                 replication_lag: float = 0.0) -> None:
        self.version = version
        self.faults = faults
        self.served = 0
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total", "Requests served, by version and status code.",
            ["version", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to serve a request, by version.",
            ["version"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        # The sandbox has no database: this gauge is a stand-in for a standby's replication lag, set by the
        # sandbox (``--replication-lag``, ``POST /admin/fault``), so `gantry dr` can run its check on Prometheus.
        self.replication_lag = Gauge(
            "demo_replication_lag_seconds", "Stand-in replication lag of this region (set by the sandbox).",
            ["region"], registry=self.registry,
        )
        self.region = region
        self.replication_lag.labels(region).set(replication_lag)
        # Pre-create the series so a rate() over a clean version is 0, not "no data".
        self.requests.labels(version, "200")
        self.requests.labels(version, "500")

    def serve_one(self) -> tuple[int, bool]:
        """Decide one request's status under the fault profile; second value: crash after answering."""
        with self.lock:
            self.served += 1
            crash = self.faults.crash_after > 0 and self.served >= self.faults.crash_after
            failed = self.rng.random() < self.faults.error_rate
            delay = self.faults.latency_ms / 1000.0
        if delay > 0:
            time.sleep(delay)
        return (500 if failed else 200), crash


def _handler(app: DemoApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gantry-demo"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            return  # per-request logs would drown the sandbox logs at 200 rps

        def _reply(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Version", app.version)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(app.registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/ready"):
                self._reply(200, b"ok\n")
            elif path == "/version":
                self._reply(200, app.version.encode() + b"\n")
            else:
                started = time.perf_counter()
                status, crash = app.serve_one()
                body = f"{app.version} {'error' if status >= 500 else 'ok'}\n".encode()
                self._reply(status, body)
                app.requests.labels(app.version, str(status)).inc()
                app.latency.labels(app.version).observe(time.perf_counter() - started)
                if crash:
                    self.wfile.flush()
                    # A real crash: no cleanup, no graceful shutdown, like an OOM kill.
                    os._exit(3)

        def do_POST(self) -> None:
            if self.path != "/admin/fault" or self.client_address[0] != "127.0.0.1":
                self._reply(404, b"not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                doc = json.loads(self.rfile.read(length) or b"{}")
                lag = doc.get("replication_lag_seconds")
                if lag is not None:
                    app.replication_lag.labels(app.region).set(float(lag))
                with app.lock:
                    app.faults = FaultProfile(
                        error_rate=float(doc.get("error_rate", app.faults.error_rate)),
                        latency_ms=float(doc.get("latency_ms", app.faults.latency_ms)),
                        crash_after=int(doc.get("crash_after", app.faults.crash_after)),
                    )
            except (ValueError, TypeError, AttributeError) as exc:
                self._reply(400, f"bad fault profile: {exc}\n".encode())
                return
            self._reply(200, b"ok\n")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.sandbox.demoapp", description=__doc__)
    parser.add_argument("--version", required=True, help="version label, e.g. v1")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="extra latency per request")
    parser.add_argument("--crash-after", type=int, default=0, help="exit after N requests (0: never)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault dice")
    parser.add_argument("--region", default="primary", help="sandbox region label: primary or standby")
    parser.add_argument("--replication-lag", type=float, default=0.0, help="stand-in replication lag (seconds)")
    parser.add_argument("--tag", default="", help="free text; the sandbox puts its directory here for pid checks")
    args = parser.parse_args(argv)
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error(f"--error-rate must be within 0..1, but {args.error_rate} was given")
    app = DemoApp(args.version, FaultProfile(args.error_rate, args.latency_ms, args.crash_after), args.seed,
                  region=args.region, replication_lag=args.replication_lag)
    server = _Server(("127.0.0.1", args.port), _handler(app))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"demo {args.version} listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
