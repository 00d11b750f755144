"""Real local servers for the metric-provider tests: an HTTP app, Prometheus, moto and a fake Kubernetes API.

Each is a context manager bound to 127.0.0.1 on a free port and stopped on exit (processes are
terminated, then killed, and always waited for), so no test leaves an orphan behind.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

Route = Callable[[BaseHTTPRequestHandler], tuple[int, str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.1) -> None:
    """Poll ``check`` until true; fail with a message saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@dataclass
class App:
    """Routes by path; records each request (method, path, body, headers)."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str, bytes, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@contextmanager
def serve(app: App) -> Iterator[App]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlparse(self.path).path
            app.requests.append((self.command, self.path, body, dict(self.headers.items())))
            route = app.routes.get(path)
            status, text = route(self) if route else (404, "not found")
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if text.startswith(("{", "[")) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def process(argv: list[str], name: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if found is None:
        raise AssertionError("prometheus must be on PATH or at /usr/bin/prometheus (CI installs it)")
    return found


@contextmanager
def prometheus(scrape_target: str, workdir: Path) -> Iterator[str]:
    """A real Prometheus scraping ``scrape_target`` (host:port) every second; yields its base URL."""
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: app\n    static_configs:\n"
        f"      - targets: ['{scrape_target}']\n")
    argv = [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    url = f"http://127.0.0.1:{port}"
    with process(argv, "prometheus") as proc:
        def ready() -> bool:
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise AssertionError(f"prometheus exited with {proc.returncode}: {err}")
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200

        wait_until(ready, f"prometheus to be ready on {url}")
        yield url


def kube_pods_route(pods: list[dict[str, Any]]) -> Route:
    """A fake API server's pods list: filters by namespace and equality label selectors."""

    def route(handler: BaseHTTPRequestHandler) -> tuple[int, str]:
        parsed = urlparse(handler.path)
        namespace = parsed.path.split("/")[4]
        selector = parse_qs(parsed.query).get("labelSelector", [""])[0]
        wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
        items = []
        for pod in pods:
            meta = pod["metadata"]
            assert isinstance(meta, dict)
            labels = meta.get("labels", {})
            assert isinstance(labels, dict)
            if meta["namespace"] == namespace and all(labels.get(k) == v for k, v in wanted.items()):
                items.append(pod)
        return 200, json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    return route


def make_pod(name: str, namespace: str, labels: dict[str, str], restarts: list[int],
             init_restarts: list[int] | None = None) -> dict[str, Any]:
    """A pod as the API server returns it (JSON: the tests index into it)."""

    def status(i: int, n: int) -> dict[str, object]:
        return {"name": f"c{i}", "image": "app:1", "imageID": "", "ready": True, "restartCount": n}

    pod_status: dict[str, object] = {"containerStatuses": [status(i, n) for i, n in enumerate(restarts)]}
    if init_restarts is not None:
        pod_status["initContainerStatuses"] = [status(i, n) for i, n in enumerate(init_restarts)]
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "status": pod_status}


def write_kubeconfig(path: Path, server: str, token: str = "test-token") -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "me", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
    }))
    return path
