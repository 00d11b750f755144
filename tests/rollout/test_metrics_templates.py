"""Health-query templates against a real Prometheus scraping series named exactly as each data plane names them.

A local exporter serves Istio, ingress-nginx, Contour/Envoy and application series for a canary and its
baseline, at known error rates and latencies. Each template must give the error rate within 1% of the
truth and the p95 within one histogram bucket of the true p95.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import httpx
import pytest
from metric_servers import App, prometheus, serve, wait_until

from components.spec import Color, RouterKind, Strategy
from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.prometheus import PrometheusProvider
from infra.rollout.metrics.templates import (
    TEMPLATES,
    DataPlane,
    GatewayImplementation,
    TemplatedTraffic,
    plane_for,
    track_ids,
)
from infra.rollout.seams import Track

NAMESPACE, SERVICE, PORT = "shop", "web", 80

# Each plane's own bucket bounds, in the plane's own unit (Istio's and Envoy's defaults are in ms).
MS_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Truth:
    requests: int
    errors: int
    latencies_ms: tuple[float, ...]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


def spread(n: int, low: float, high: float) -> tuple[float, ...]:
    return tuple(low + (high - low) * i / (n - 1) for i in range(n))


CANARY = Truth(requests=2000, errors=100, latencies_ms=spread(2000, 20.0, 400.0))
BASELINE = Truth(requests=4000, errors=40, latencies_ms=spread(4000, 5.0, 80.0))


@dataclass
class Exposition:
    """Counters and histograms in Prometheus text format, with the exact names and labels given."""

    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    buckets: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, metric: str, labels: dict[str, str], by: float) -> None:
        with self.lock:
            key = (metric, tuple(sorted(labels.items())))
            self.counters[key] = self.counters.get(key, 0.0) + by

    def observe(self, histogram: str, labels: dict[str, str], bounds: tuple[float, ...], value: float) -> None:
        for le in (*bounds, math.inf):
            le_text = "+Inf" if math.isinf(le) else f"{le:g}"
            self.count(f"{histogram}_bucket", {**labels, "le": le_text}, 1.0 if value <= le else 0.0)

    def text(self) -> str:
        with self.lock:
            lines = []
            for (metric, labels), value in sorted(self.counters.items()):
                inner = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{metric}{{{inner}}} {value:g}")
            return "\n".join(lines) + "\n"


def record(expo: Exposition, plane: DataPlane, track: Track, truth: Truth, *, zero: bool) -> None:
    """Write one track's traffic as ``plane`` exports it (or only zeroed series when ``zero``)."""
    ids = track_ids(SERVICE, NAMESPACE, PORT, Strategy.CANARY)[track]
    if plane is DataPlane.ISTIO:
        base = {"reporter": "destination", "destination_workload_namespace": NAMESPACE,
                "destination_workload": ids.workload, "source_workload": "istio-ingressgateway"}
        code_label, hist, bounds, unit = "response_code", "istio_request_duration_milliseconds", MS_BUCKETS, 1.0
        metric = "istio_requests_total"
    elif plane is DataPlane.NGINX:
        base = {"namespace": NAMESPACE, "ingress": ids.ingress, "service": ids.backend, "host": "web.example.com"}
        code_label, hist, bounds, unit = "status", "nginx_ingress_controller_request_duration_seconds", \
            SECONDS_BUCKETS, 1000.0  # type: ignore[assignment]
        metric = "nginx_ingress_controller_requests"
    elif plane is DataPlane.LINKERD:
        # The proxy's own labels, plus what the scrape adds from the pod (namespace, deployment, pod).
        base = {"direction": "inbound", "namespace": NAMESPACE, "deployment": ids.workload,
                "pod": f"{ids.workload}-5d8f7-abcde", "tls": "true"}
        code_label, hist, bounds, unit = "status_code", "response_latency_ms", MS_BUCKETS, 1.0
        metric = "response_total"
    elif plane is DataPlane.CONTOUR:
        base = {"envoy_cluster_name": f"{NAMESPACE}_{ids.backend}_{PORT}"}
        code_label, hist, bounds, unit = "envoy_response_code", "envoy_cluster_upstream_rq_time", MS_BUCKETS, 1.0
        metric = "envoy_cluster_upstream_rq"
    else:
        base = {"namespace": NAMESPACE, "app": SERVICE, "track": ids.track}
        code_label, hist, bounds, unit = "code", "http_request_duration_seconds", SECONDS_BUCKETS, 1000.0  # type: ignore[assignment]
        metric = "http_requests_total"
    for code, n in (("200", truth.requests - truth.errors), ("503", truth.errors)):
        labels = {**base, code_label: code}
        if plane is DataPlane.LINKERD:  # Linkerd classifies each response; 5xx is a failure
            labels["classification"] = "failure" if code.startswith("5") else "success"
        expo.count(metric, labels, 0.0 if zero else float(n))
    for latency in truth.latencies_ms[:1] if zero else truth.latencies_ms:
        if zero:
            for le in (*bounds, math.inf):
                expo.count(f"{hist}_bucket", {**base, "le": "+Inf" if math.isinf(le) else f"{le:g}"}, 0.0)
        else:
            expo.observe(hist, base, bounds, latency / unit)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProvider]:
    expo = Exposition()
    for plane in DataPlane:
        for track, truth in ((Track.CANARY, CANARY), (Track.BASELINE, BASELINE)):
            record(expo, plane, track, truth, zero=True)
    app = App(routes={"/metrics": lambda _: (200, expo.text())})
    with serve(app) as running, prometheus(running.url.removeprefix("http://"),
                                           tmp_path_factory.mktemp("prom")) as url:
        provider = PrometheusProvider(url=url)

        def total(expr: str) -> float:
            series = provider.vector(expr)
            return series[0].value if series else -1.0

        wait_until(lambda: total("sum(istio_requests_total)") == 0.0, "the first scrape of zeroed counters")
        for plane in DataPlane:
            for track, truth in ((Track.CANARY, CANARY), (Track.BASELINE, BASELINE)):
                record(expo, plane, track, truth, zero=False)
        expected = float(CANARY.requests + BASELINE.requests)
        wait_until(lambda: total("sum(istio_requests_total)") == expected, "a scrape of the traffic")
        points = int(total("count_over_time(up[5m])"))
        wait_until(lambda: total("count_over_time(up[5m])") >= points + 3, "three more scrapes", timeout=20)
        yield provider
        provider.close()


def bucket_index(bounds_ms: list[float], value_ms: float) -> int:
    return bisect.bisect_left(bounds_ms, value_ms)


@pytest.mark.sandbox
@pytest.mark.parametrize("plane", list(DataPlane))
def test_template_measures_error_rate_and_p95(plane: DataPlane, scraped: PrometheusProvider) -> None:
    template = TEMPLATES[plane]
    traffic = TemplatedTraffic(scraped, template, track_ids(SERVICE, NAMESPACE, PORT, Strategy.CANARY))
    bounds_ms = [b * template.latency_unit_ms for b in
                 (SECONDS_BUCKETS if template.latency_unit_ms == 1000.0 else MS_BUCKETS)]
    for track, truth in ((Track.CANARY, CANARY), (Track.BASELINE, BASELINE)):
        counts = traffic.counts(track, 120.0)
        measured = traffic.error_rate(track, 120.0)
        assert measured is not None
        assert abs(measured - truth.error_rate) <= 0.01 * truth.error_rate, (plane, track, measured)
        # Whole-request counts (for the sequential test) keep the rate to within rounding of one request.
        slack = 1.5 / counts.requests + 0.01 * truth.error_rate
        assert abs(counts.errors / counts.requests - truth.error_rate) <= slack
        assert counts.p95_ms is not None
        # Within one bucket: the measured p95 lies in the true p95's bucket or a neighbour.
        assert abs(bucket_index(bounds_ms, counts.p95_ms) - bucket_index(bounds_ms, truth.p95_ms)) <= 1, \
            (plane, track, counts.p95_ms, truth.p95_ms)
        assert counts.latencies_ms, "bucket samples for the rank test"


@pytest.mark.sandbox
def test_a_track_with_no_series_is_missing_data(scraped: PrometheusProvider) -> None:
    ids = track_ids("other", NAMESPACE, PORT, Strategy.CANARY)
    traffic = TemplatedTraffic(scraped, TEMPLATES[DataPlane.ISTIO], ids)
    with pytest.raises(MetricsUnavailable, match="no istio_requests_total series"):
        traffic.counts(Track.CANARY, 120.0)


def test_contour_backends_do_not_match_each_other() -> None:
    ids = track_ids(SERVICE, NAMESPACE, PORT, Strategy.CANARY)
    stable = TEMPLATES[DataPlane.CONTOUR].requests_query(ids[Track.BASELINE].as_map(), 60)
    assert 'envoy_cluster_name=~"shop_web_80(_.+)?"' in stable
    # The stable backend's regex is anchored, so web-canary's series never count as web's.
    import re

    pattern = re.compile(r"shop_web_80(_.+)?")
    assert pattern.fullmatch("shop_web-canary_80") is None
    assert pattern.fullmatch("shop_web_80_da39a3ee5e") is not None


def test_rendered_queries_are_exact() -> None:
    ids = track_ids(SERVICE, NAMESPACE, PORT, Strategy.CANARY)[Track.CANARY].as_map()
    t = TEMPLATES[DataPlane.ISTIO]
    assert t.errors_query(ids, 30) == (
        'sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="shop",'
        'destination_workload="web-canary",response_code=~"5.."}[30s]))')
    assert TEMPLATES[DataPlane.NGINX].quantile_query(ids, 0.95, 60).endswith("[60s]))) * 1000")
    assert TEMPLATES[DataPlane.LINKERD].error_rate_query(ids, 60) == (
        'sum(increase(response_total{direction="inbound",namespace="shop",deployment="web-canary",'
        'classification="failure"}[60s])) / '
        'sum(increase(response_total{direction="inbound",namespace="shop",deployment="web-canary"}[60s]))')
    assert TEMPLATES[DataPlane.LINKERD].quantile_query(ids, 0.95, 60) == (
        'histogram_quantile(0.95, sum by (le) (rate(response_latency_ms_bucket{direction="inbound",'
        'namespace="shop",deployment="web-canary"}[60s])))')


def test_routers_map_to_planes() -> None:
    assert plane_for(RouterKind.ISTIO) is DataPlane.ISTIO
    assert plane_for(RouterKind.NGINX) is DataPlane.NGINX
    assert plane_for(RouterKind.GATEWAY_API) is DataPlane.CONTOUR
    assert plane_for(RouterKind.GATEWAY_API, GatewayImplementation.ISTIO) is DataPlane.ISTIO
    assert plane_for(RouterKind.SMI) is DataPlane.LINKERD
    with pytest.raises(InputError, match="router must be one of"):
        plane_for(cast(RouterKind, "linkerd"))  # what an unchecked caller could pass


def test_bluegreen_judges_the_new_color_behind_the_active_service() -> None:
    ids = track_ids("api", "api", 80, Strategy.BLUEGREEN, Color.BLUE)
    assert ids[Track.CANARY].workload == "api-blue" and ids[Track.CANARY].backend == "api"
    assert ids[Track.BASELINE].workload == "api-green"


@pytest.mark.sandbox
def test_prometheus_rejects_nothing_we_render(scraped: PrometheusProvider) -> None:
    """Every rendered query parses on a real Prometheus (an HTTP 400 would mean a syntax error)."""
    for plane in DataPlane:
        traffic = TemplatedTraffic(scraped, TEMPLATES[plane], track_ids(SERVICE, NAMESPACE, PORT, Strategy.CANARY))
        for promql in traffic.queries(Track.CANARY, 60).values():
            body = httpx.get(f"{scraped.url}/api/v1/query", params={"query": promql}, timeout=5).json()
            assert body["status"] == "success", (plane, promql, body)
