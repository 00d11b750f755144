"""Prometheus provider and PrometheusTraffic against a real Prometheus scraping a prometheus_client app.

One Prometheus per module (scrape interval 1s); the app's counters are written once, before the
first query, so every test reads the same recorded traffic: the canary at 10% errors and ~300 ms,
the stable track at 1% errors and ~50 ms.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from metric_servers import App, free_port, prometheus, serve, wait_until
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from infra.errors import InputError
from infra.rollout.analysis import SequentialAnalysis, ThresholdAnalysis
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.prometheus import PrometheusProvider, PrometheusTraffic
from infra.rollout.seams import AnalysisContext, MetricQuery, RolloutId, Sample, Track, Verdict
from infra.settings.rollout import RolloutSettings

CANARY = (400, 40, 0.3)   # requests, errors, latency seconds
STABLE = (1000, 10, 0.05)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProvider]:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests.", ["version", "code"], registry=registry)
    latency = Histogram("http_request_duration_seconds", "Latency.", ["version"], registry=registry,
                        buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
    for version in ("canary", "stable"):
        for code in ("200", "500"):
            requests.labels(version, code)
        latency.labels(version)
    app = App(routes={"/metrics": lambda _: (200, generate_latest(registry).decode())})
    with serve(app) as running:
        target = running.url.removeprefix("http://")
        with prometheus(target, tmp_path_factory.mktemp("prom")) as url:
            provider = PrometheusProvider(url=url)

            def scraped(expected: float) -> bool:
                s = provider.query(MetricQuery("n", 'sum(http_requests_total{version="canary"})'))
                return s.count > 0 and s.value == expected

            # Series at zero first, so increase() sees the counters start from 0.
            wait_until(lambda: scraped(0.0), "the first scrape of the zeroed counters")
            for version, (n, errors, seconds) in (("canary", CANARY), ("stable", STABLE)):
                requests.labels(version, "200").inc(n - errors)
                requests.labels(version, "500").inc(errors)
                for _ in range(n):
                    latency.labels(version).observe(seconds)
            wait_until(lambda: scraped(float(CANARY[0])), "a scrape of the recorded traffic")
            # A few more scrapes so rate() has several points at the new value.
            seen = _points(url)
            wait_until(lambda: _points(url) >= seen + 3, "three more scrapes after the traffic", timeout=15)
            yield provider
            provider.close()


def _points(url: str) -> int:
    body = httpx.get(f"{url}/api/v1/query", params={"query": 'count_over_time(up[5m])'}).json()
    return int(float(body["data"]["result"][0]["value"][1]))


def test_instant_query_sums_series(prom: PrometheusProvider) -> None:
    s = prom.query(MetricQuery("total", "sum by (version) (http_requests_total)"))
    assert isinstance(s, Sample)
    assert (s.value, s.count) == (1400.0, 2)


def test_placeholders_window_and_track_are_filled(prom: PrometheusProvider) -> None:
    q = MetricQuery("errors", 'sum(increase(http_requests_total{version="$track",code=~"5.."}[$window])) / '
                    'sum(increase(http_requests_total{version="$track"}[$window]))',
                    track=Track.CANARY, window_seconds=60)
    s = prom.query(q)
    assert isinstance(s, Sample) and s.value == pytest.approx(0.10, rel=0.02)


def test_no_series_is_no_data_and_bad_promql_is_unavailable(prom: PrometheusProvider) -> None:
    assert prom.query(MetricQuery("none", 'http_requests_total{version="nope"}')).count == 0
    assert prom.query(MetricQuery("nan", "0/0")).count == 0
    with pytest.raises(MetricsUnavailable, match="rejected"):
        prom.query(MetricQuery("bad", "sum(rate(http_requests_total[1m])"))


def test_traffic_counts_per_version(prom: PrometheusProvider) -> None:
    traffic = PrometheusTraffic(prom, versions={Track.CANARY: "canary", Track.BASELINE: "stable"})
    canary = traffic.counts(Track.CANARY, 60)
    stable = traffic.counts(Track.BASELINE, 60)
    # increase() extrapolates towards the window's end, so counts are close to, not exactly, the truth.
    assert canary.requests == pytest.approx(CANARY[0], rel=0.3)
    assert canary.errors / canary.requests == pytest.approx(0.10, abs=0.01)
    assert stable.errors / stable.requests == pytest.approx(0.01, abs=0.005)
    assert canary.p95_ms is not None and 250 <= canary.p95_ms <= 500, "0.3 s lands in the (0.25, 0.5] bucket"
    assert stable.p95_ms is not None and 25 <= stable.p95_ms <= 50
    assert set(canary.latencies_ms) == {375.0}, "samples sit at the midpoint of their bucket"
    assert len(canary.latencies_ms) == pytest.approx(canary.requests, rel=0.02)
    assert stable.latencies_ms and all(v == pytest.approx(37.5) for v in stable.latencies_ms)


def test_missing_version_is_unavailable(prom: PrometheusProvider) -> None:
    traffic = PrometheusTraffic(prom, versions={Track.CANARY: "v-missing", Track.BASELINE: "stable"})
    with pytest.raises(MetricsUnavailable, match="no http_requests_total series for v-missing"):
        traffic.counts(Track.CANARY, 60)


def ctx() -> AnalysisContext:
    return AnalysisContext(RolloutId("r1"), 0, 10, step_started_at=0.0, now=60.0,
                           canary_version="canary", baseline_version="stable")


def test_sequential_judge_fails_the_bad_canary_from_real_prometheus(prom: PrometheusProvider) -> None:
    traffic = PrometheusTraffic(prom)
    result = SequentialAnalysis(RolloutSettings(), traffic).analyse(ctx())
    verdicts = {c.name: c.verdict for c in result.checks}
    assert result.verdict is Verdict.FAIL
    assert verdicts["error-rate-sprt"] is Verdict.FAIL
    assert verdicts["latency-mann-whitney"] is Verdict.FAIL
    assert verdicts["p95-latency"] is Verdict.PASS


def test_sequential_judge_passes_stable_against_itself(prom: PrometheusProvider) -> None:
    traffic = PrometheusTraffic(prom, versions={Track.CANARY: "stable", Track.BASELINE: "stable"})
    result = SequentialAnalysis(RolloutSettings(), traffic).analyse(ctx())
    assert result.verdict is Verdict.PASS, result.checks


def test_threshold_judge_on_real_prometheus(prom: PrometheusProvider) -> None:
    result = ThresholdAnalysis(RolloutSettings(), PrometheusTraffic(prom)).analyse(ctx())
    by_name = {c.name: c for c in result.checks}
    # The limit is the canary gate: a 99.5% success rate.
    assert by_name["error-rate"].verdict is Verdict.FAIL and by_name["error-rate"].limit == 0.005


def test_request_counts_are_exact_counter_differences_over_the_window(prom: PrometheusProvider) -> None:
    traffic = PrometheusTraffic(prom)
    # increase() would extrapolate 400 to the range's edges (about 10% more here); the judge needs whole requests.
    assert traffic.requests(Track.CANARY, 600.0) == (CANARY[0], CANARY[1])
    assert traffic.requests(Track.BASELINE, 600.0) == (STABLE[0], STABLE[1])
    # Nothing was served since well after the last scrape of the traffic: a short window counts nothing.
    assert traffic.requests(Track.CANARY, 0.5) == (0, 0)
    assert traffic.buckets(Track.CANARY, 600.0)[-1] == (math.inf, float(CANARY[0]))


def test_online_and_offline() -> None:
    assert PrometheusProvider(url=f"http://127.0.0.1:{free_port()}").is_online() is False
    with pytest.raises(MetricsUnavailable, match="unreachable"):
        PrometheusProvider(url=f"http://127.0.0.1:{free_port()}").query(MetricQuery("x", "up"))


def test_online_against_real_prometheus(prom: PrometheusProvider) -> None:
    assert prom.is_online() is True


@pytest.mark.parametrize("url", [None, "", "127.0.0.1:9090"])
def test_url_is_required(url: str | None, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"metrics\.url must be the Prometheus base URL"):
        PrometheusProvider(url=url)
