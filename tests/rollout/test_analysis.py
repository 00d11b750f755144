"""Threshold gates and the sequential judge: defaults, per-service limits, the min-sample guard, fail-safe data."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from infra.errors import InputError
from infra.rollout.analysis import (
    MetricGate,
    SequentialAnalysis,
    ThresholdAnalysis,
    make_analysis,
    restarts_gate,
)
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.seams import (
    AnalysisContext,
    AnalysisResult,
    MetricQuery,
    RolloutId,
    Sample,
    Track,
    TrafficCounts,
    Verdict,
)
from infra.settings.rollout import RolloutSettings


class FakeTraffic:
    def __init__(self, by_track: Mapping[Track, TrafficCounts | Exception]) -> None:
        self.by_track = dict(by_track)
        self.windows: list[float] = []

    def counts(self, track: Track, window_seconds: float) -> TrafficCounts:
        self.windows.append(window_seconds)
        got = self.by_track[track]
        if isinstance(got, Exception):
            raise got
        return got


class FakeProvider:
    name = "fake"

    def __init__(self, value: float | Sample | Exception, online: bool = True) -> None:
        self.value, self.online = value, online
        self.queries: list[MetricQuery] = []

    def query(self, query: MetricQuery) -> float | Sample:
        self.queries.append(query)
        if isinstance(self.value, Exception):
            raise self.value
        return self.value

    def is_online(self) -> bool:
        return self.online


def ctx(window: float = 30.0) -> AnalysisContext:
    return AnalysisContext(RolloutId("r"), 1, 25, step_started_at=100.0, now=100.0 + window,
                           canary_version="web:1.1", baseline_version="web:1.0")


def counts(requests: int = 200, errors: int = 0, p95: float | None = 100.0,
           latencies: tuple[float, ...] = ()) -> TrafficCounts:
    return TrafficCounts(requests=requests, errors=errors, latencies_ms=latencies, p95_ms=p95)


def by_name(result: AnalysisResult) -> dict[str, Verdict]:
    return {c.name: c.verdict for c in result.checks}


# --------------------------------------------------------------------------- threshold defaults


@pytest.mark.parametrize(("strategy", "errors", "p95", "expected"), [
    ("canary", 1, 100.0, Verdict.PASS),      # 99.5% success is at the canary gate, not below it
    ("canary", 2, 100.0, Verdict.FAIL),      # 99.0% < 99.5%
    ("bluegreen", 2, 100.0, Verdict.PASS),   # 1% errors is at the blue/green gate, not above it
    ("bluegreen", 3, 100.0, Verdict.FAIL),   # 1.5% > 1%: switch back
    ("canary", 0, 2000.0, Verdict.PASS),
    ("canary", 0, 2000.1, Verdict.FAIL),     # p95 above 2000 ms
])
def test_threshold_defaults_follow_the_seed_rules(strategy: str, errors: int, p95: float, expected: Verdict) -> None:
    traffic = FakeTraffic({Track.CANARY: counts(200, errors, p95)})
    assert ThresholdAnalysis(RolloutSettings(), traffic, strategy=strategy).analyse(ctx()).verdict is expected


def test_the_absolute_error_limit_caps_a_relaxed_gate() -> None:
    relaxed = RolloutSettings(min_success_rate=0.5, blue_green_max_error_rate=0.5)
    traffic = FakeTraffic({Track.CANARY: counts(200, 12)})  # 6% > the absolute 5%
    for strategy in ("canary", "bluegreen"):
        assert ThresholdAnalysis(relaxed, traffic, strategy=strategy).analyse(ctx()).verdict is Verdict.FAIL


def test_window_is_the_time_since_the_step_started() -> None:
    traffic = FakeTraffic({Track.CANARY: counts()})
    result = ThresholdAnalysis(RolloutSettings(), traffic).analyse(ctx(window=45.0))
    assert traffic.windows == [45.0, 45.0], "the canary is judged and the stable version observed on one window"
    assert result.traffic == {Track.CANARY: counts()}, "an unreadable stable version is left out, not a failure"
    assert result.verdict is Verdict.PASS


def test_threshold_judge_records_the_stable_versions_counts_without_judging_them() -> None:
    stable = counts(5000, 900)  # a terrible stable version is evidence for the KPI report, not a verdict
    traffic = FakeTraffic({Track.CANARY: counts(), Track.BASELINE: stable})
    result = ThresholdAnalysis(RolloutSettings(), traffic).analyse(ctx())
    assert result.verdict is Verdict.PASS
    assert result.traffic == {Track.CANARY: counts(), Track.BASELINE: stable}


def test_limits_are_configurable_per_service() -> None:
    lenient = RolloutSettings(min_success_rate=0.9, max_error_rate=0.10, max_p95_ms=3000)
    traffic = FakeTraffic({Track.CANARY: counts(200, 16, 2500.0)})  # 8%, 2.5 s
    assert ThresholdAnalysis(RolloutSettings(), traffic).analyse(ctx()).verdict is Verdict.FAIL
    assert ThresholdAnalysis(lenient, traffic).analyse(ctx()).verdict is Verdict.PASS


@pytest.mark.parametrize(("restarts", "expected"), [(5.0, Verdict.PASS), (6.0, Verdict.FAIL)])
def test_more_than_five_restarts_fails(restarts: float, expected: Verdict) -> None:
    provider = FakeProvider(Sample(restarts, count=3))
    gate = restarts_gate(provider, "app=web,track=canary", "web", RolloutSettings().max_restarts)
    result = ThresholdAnalysis(RolloutSettings(), None, [gate]).analyse(ctx())
    assert result.verdict is expected
    assert provider.queries[0].labels == {"namespace": "web"}


def test_threshold_judge_holds_below_min_samples_even_when_the_rate_looks_bad() -> None:
    traffic = FakeTraffic({Track.CANARY: counts(10, 1)})  # "10%" from one error
    result = ThresholdAnalysis(RolloutSettings(), traffic).analyse(ctx())
    assert by_name(result)["error-rate"] is Verdict.INCONCLUSIVE
    assert result.verdict is Verdict.INCONCLUSIVE


# --------------------------------------------------------------------------- missing data fails safe


@pytest.mark.parametrize("traffic", [
    FakeTraffic({Track.CANARY: MetricsUnavailable("prometheus down")}),
    FakeTraffic({Track.CANARY: counts(0, 0)}),
    FakeTraffic({Track.CANARY: counts(200, 0, p95=None)}),
], ids=["provider-offline", "no-requests", "no-latency"])
def test_threshold_missing_data_fails(traffic: FakeTraffic) -> None:
    assert ThresholdAnalysis(RolloutSettings(), traffic).analyse(ctx()).verdict is Verdict.FAIL


@pytest.mark.parametrize("provider", [
    FakeProvider(0.0, online=False),
    FakeProvider(MetricsUnavailable("timeout")),
    FakeProvider(Sample(float("nan"), count=0)),
    FakeProvider(float("nan")),
], ids=["offline", "raises", "count-0", "nan"])
def test_gate_without_data_fails_never_passes(provider: FakeProvider) -> None:
    gate = MetricGate("alarm", provider, MetricQuery("alarm", "alarm:x"), max_value=0.0)
    result = ThresholdAnalysis(RolloutSettings(), None, [gate]).analyse(ctx())
    assert result.verdict is Verdict.FAIL
    assert "fails safe" in result.checks[0].detail or "unavailable" in result.checks[0].detail


@pytest.mark.parametrize("track", [Track.CANARY, Track.BASELINE])
def test_sequential_missing_track_fails(track: Track) -> None:
    data: dict[Track, TrafficCounts | Exception] = {Track.CANARY: counts(), Track.BASELINE: counts()}
    data[track] = MetricsUnavailable("down")
    result = SequentialAnalysis(RolloutSettings(), FakeTraffic(data)).analyse(ctx())
    assert result.verdict is Verdict.FAIL and by_name(result)[f"{track.value}-traffic"] is Verdict.FAIL


def test_sequential_served_requests_without_latency_samples_fails() -> None:
    data = {Track.CANARY: counts(200, 0), Track.BASELINE: counts(2000, 0)}
    result = SequentialAnalysis(RolloutSettings(), FakeTraffic(data)).analyse(ctx())
    assert by_name(result)["latency-mann-whitney"] is Verdict.FAIL


def test_no_source_and_no_gates_is_refused() -> None:
    with pytest.raises(InputError, match="traffic source or at least one metric gate"):
        ThresholdAnalysis(RolloutSettings(), None)


# --------------------------------------------------------------------------- min-sample guard


def test_min_sample_guard_holds_what_the_sprt_would_pass() -> None:
    lat = tuple(float(i % 50 + 50) for i in range(200))
    data = {Track.CANARY: counts(200, 0, latencies=lat), Track.BASELINE: counts(5000, 50, latencies=lat * 10)}
    settings = RolloutSettings(min_samples=300)
    analysis = SequentialAnalysis(settings, FakeTraffic(data))
    sprt = analysis.sprt_check(data[Track.CANARY], data[Track.BASELINE])
    plan = analysis.plan_for(0.01)
    assert plan.llr(200, 0) <= plan.lower, "the SPRT alone would accept H0 here"
    assert sprt.verdict is Verdict.INCONCLUSIVE
    assert analysis.analyse(ctx()).verdict is Verdict.INCONCLUSIVE, "inconclusive holds, it never passes"


def test_sprt_fail_is_honoured_below_min_samples() -> None:
    data = {Track.CANARY: counts(5, 4), Track.BASELINE: counts(5000, 5)}
    result = SequentialAnalysis(RolloutSettings(), FakeTraffic(data)).analyse(ctx())
    assert by_name(result)["error-rate-sprt"] is Verdict.FAIL and result.verdict is Verdict.FAIL


def test_baseline_rate_sets_h0_only_with_enough_baseline_data() -> None:
    analysis = SequentialAnalysis(RolloutSettings(), FakeTraffic({}))
    trusted = analysis.sprt_check(counts(100, 0), counts(1000, 30))
    untrusted = analysis.sprt_check(counts(100, 0), counts(10, 3))
    # A failing baseline (3%) lifts H0 to its own rate, H1 keeps the default distance (2% - 0.3%) above it.
    assert "H0 p=0.030" in trusted.detail and "H1 p=0.047" in trusted.detail
    assert "H0 p=0.003" in untrusted.detail and "H1 p=0.020" in untrusted.detail


# --------------------------------------------------------------------------- factory


def test_make_analysis_follows_the_judge_setting() -> None:
    traffic = FakeTraffic({})
    assert isinstance(make_analysis(RolloutSettings(judge="sprt"), traffic), SequentialAnalysis)
    assert isinstance(make_analysis(RolloutSettings(judge="threshold"), traffic), ThresholdAnalysis)
    with pytest.raises(InputError, match=r"rollout\.judge must be threshold"):
        make_analysis(RolloutSettings(judge="sprt"), None)
