"""HTTP probe provider: requests a URL N times and reports success rate and p50/p95/p99 latency.

Registers the ``http`` metrics backend: gates probe ``url`` (or their ``expr``) when no metrics system exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from infra import registry
from infra.errors import InputError
from infra.rollout.backends import MetricsContext, MetricsSource
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics import percentile
from infra.rollout.seams import MetricQuery, MetricsProvider, Sample

if TYPE_CHECKING:
    import httpx

VALUES = ("success_rate", "error_rate", "p50", "p95", "p99", "requests", "errors")


@dataclass(frozen=True, slots=True)
class ProbeStats:
    """The result of N probes; a probe fails on a transport error or a status of 500 or above."""

    requests: int
    errors: int
    latencies_ms: tuple[float, ...]

    @property
    def success_rate(self) -> float:
        return (self.requests - self.errors) / self.requests if self.requests else 0.0

    def value(self, name: str) -> float:
        if name == "success_rate":
            return self.success_rate
        if name == "error_rate":
            return 1.0 - self.success_rate
        if name in ("p50", "p95", "p99"):
            return percentile(self.latencies_ms, float(name[1:]))
        if name == "requests":
            return float(self.requests)
        if name == "errors":
            return float(self.errors)
        raise InputError(f"http metric name must be one of {', '.join(VALUES)}, but {name!r} was given")


class HttpProvider:
    """Probes ``query.expr`` (or the configured ``url``); ``query.name`` picks the reported value."""

    name = "http"

    def __init__(self, url: str | None = None, probes: int = 20, timeout: float = 5.0,
                 error_status: int = 500, client: httpx.Client | None = None,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        import httpx

        if probes < 1:
            raise InputError(f"probes must be at least 1, but {probes} was given")
        self.url = url
        self.probes = probes
        self.timeout = timeout
        self.error_status = error_status
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._timer = timer
        """Seconds, monotonic; injected by tests so latency figures do not depend on the machine's load."""

    def probe(self, url: str, n: int | None = None) -> ProbeStats:
        """Request ``url`` n times in sequence, timing each request."""
        import httpx

        latencies: list[float] = []
        errors = 0
        for _ in range(n or self.probes):
            start = self._timer()
            try:
                status = self._client.get(url).status_code
            except httpx.HTTPError:
                status = None
            latencies.append((self._timer() - start) * 1000.0)
            if status is None or status >= self.error_status:
                errors += 1
        return ProbeStats(len(latencies), errors, tuple(latencies))

    def _url(self, query: MetricQuery) -> str:
        url = query.expr or self.url
        if not url or not url.startswith(("http://", "https://")):
            raise InputError(f"http metric {query.name} expr must be an http(s) URL, but {url!r} was given")
        return url

    def query(self, query: MetricQuery) -> Sample:
        stats = self.probe(self._url(query))
        if stats.errors == stats.requests and query.name not in ("success_rate", "error_rate", "errors"):
            # Every probe failed: latency figures would describe timeouts, not the service.
            raise MetricsUnavailable(f"{self._url(query)}: all {stats.requests} probes failed")
        return Sample(value=stats.value(query.name), count=stats.requests, observations=stats.latencies_ms)

    def is_online(self) -> bool:
        import httpx

        if not self.url:
            return True  # nothing fixed to check: each query names its own URL
        try:
            self._client.get(self.url)
        except httpx.HTTPError:
            return False
        return True

    def close(self) -> None:
        self._client.close()


@registry.METRICS.register
class HttpSettings(MetricsSource):
    """``rollout.metrics`` for HTTP probes: each gate's ``name`` picks the value (success_rate, p95, ...)."""

    kind: Literal["http"] = "http"
    url: str = Field(description="URL to probe (a gate's expr overrides it). Required.")
    probes: int = Field(default=20, ge=1, le=1000, description="Requests per analysis. Default: 20.")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        return HttpProvider(url=self.url, probes=self.probes)
