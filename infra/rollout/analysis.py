"""Step analysis: threshold gates and the streaming sequential judge (SPRT + Mann-Whitney), fail-safe.

The scheduler calls ``Analysis.analyse`` at the end of each step's interval; while the interval runs, the
engine calls ``StreamingAnalysis.look`` every ``pollInterval`` (default 1 s, the sandbox's scrape interval).
``make_analysis`` builds the judge the service's ``RolloutSettings.judge`` names. Every gate is fail-safe:
a provider that is offline, raises ``MetricsUnavailable`` or returns no data yields a FAILED check at the
end of the interval, never a pass. Too little data for a verdict yields INCONCLUSIVE, which holds the
step and never passes (Kayenta's minimum-sample guard).

Windows
-------
Every analysis looks at the cumulative counts since the step was applied: an inconclusive hold starts a
new interval but keeps the window, so evidence adds up across holds. Only a held *failed* analysis
starts a fresh window (a fresh test). The threshold judge gives one verdict per interval (Flagger's
semantics: its window is the last interval whenever the previous one was decisive).

The sequential judge
--------------------
Error counts are judged with Wald's sequential probability ratio test on the canary's requests,
each a Bernoulli trial "is this request an error":

* The seed's gates set the hypotheses. A canary's success rate must stay at or above 99.5%
  (``minSuccessRate``), so its error gate is L = 0.5%; blue/green switches back above L = 1%
  (``blueGreenMaxErrorRate``). By default H0 (healthy) is ``p0 = 0.6 L`` and H1 (bad) ``p1 = 4 L``
  for a canary: **0.3% against 2%**, with **alpha = 0.01** and **beta = 0.05**. Blue/green uses
  ``p0 = L/2`` and ``p1 = 2 L``, 0.5% against 2%: after the switch its windows see all the traffic
  (1000 requests an interval on the sandbox), so it affords a test whose indifference point, 1.08%,
  sits on the 1% gate. ``rollout.sprt`` overrides any of them.
* Why: the brief is that a canary at 2% errors fails and one at 0.3% passes, each with probability at
  least 0.95. Wald's test with p0 = 0.3% and p1 = 2% has OC(0.3%) ~ 1 - alpha and OC(2%) ~ beta, so
  these are the widest hypotheses that meet it, and the widest give the fewest requests per decision
  (E[N] = 254 under H0 and 198 under H1; a narrower pair around 0.5% needs thousands, more than a step
  at 10% weight ever sees). alpha is per step, and a rollout has several steps that each can fail a
  healthy canary, so it is 0.01 (four steps: about 4%); beta = 0.05 is the brief's figure, and only the
  first bad step needs to catch a bad canary. The test is indifferent (the LLR has zero drift) at
  0.9% errors: canaries between 0.5% and 0.9% are rolled back less often than not. Tightening that needs
  many more requests per step; ``bench/sprt_judge.py`` gives the whole OC and ASN curves.
* Wald's boundaries are ``A = ln((1-beta)/alpha)`` (cross it: FAIL) and ``B = ln(beta/(1-alpha))``
  (cross it: PASS). With the defaults, three errors in the first ~60 requests cross ``A``; a clean
  canary crosses ``B`` after 174 requests, and each error costs 110 more.

It streams: each look runs the test on the counts so far and fails the step the moment ``A`` is
crossed (at any sample size: the boundary already bounds false failures by alpha), so a 20%-error
canary is caught a scrape or two after its third error, not at the end of the interval. A PASS needs
the end of the interval, ``min_samples`` requests and ``B``. The test is truncated at ``max_samples``
(default three times the larger expected sample number) and at the last analysis the step's hold
budget allows (``maxHolds``): there the observed rate is compared with the midpoint of p0 and p1, so a
rollout never holds forever, and one more hold never turns a healthy canary into a counted failure.
Each step is its own test, because its window starts when the step is applied: over k steps a
healthy canary is failed with probability at most about k * alpha. ``expected_sample_number`` gives
Wald's ASN, the requests a step needs on average before any verdict (the statistical floor);
``bench/sprt_judge.py`` measures OC and ASN by simulation beside Wald's curves.

The judge is comparative, and the floor is where that starts: ``p0 = max(baseline error rate, 0.6 L)``
(the baseline counts once it has ``min_samples`` requests) and ``p1 = max(4 L, p0 + (4 L - 0.6 L))``
(canary figures).
With a healthy baseline the test is the seed's 99.5% gate; with a baseline that itself fails at 8%,
H0 becomes 8% and H1 9.7%, so a canary no worse than the baseline passes (rolling back would not help)
while one clearly worse still fails. The threshold judge is the one that enforces limits on the canary
alone: the gate L, and the absolute limits (``maxErrorRate`` 5%, p95 2000 ms, more than 5 restarts).

Latency is judged with a one-sided Mann-Whitney U test (canary slower than baseline) on per-request
latency samples: it fails when ``p < 1 - confidence`` (Kayenta's 0.98) *and* the canary's median is
more than ``latency_tolerance`` above the baseline's, so a statistically significant but harmless
shift does not roll back. Fewer than ``min_samples`` samples on either side is INCONCLUSIVE. The
sequential judge also keeps the absolute p95 limit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import median
from typing import Protocol, runtime_checkable

from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics import as_sample, percentile
from infra.rollout.seams import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    MetricQuery,
    MetricsProvider,
    Track,
    TrafficCounts,
    Verdict,
)
from infra.settings.rollout import RolloutSettings

_log = logging.getLogger(__name__)

MIN_WINDOW_SECONDS = 1.0


class TrafficSource(Protocol):
    """Requests, errors and latencies of one track over a window; raises ``MetricsUnavailable``."""

    def counts(self, track: Track, window_seconds: float) -> TrafficCounts: ...


@runtime_checkable
class ErrorCountSource(Protocol):
    """A traffic source that can also give (requests, errors) alone, cheaper than ``counts``: streaming looks
    need nothing else, and run every poll interval."""

    def requests(self, track: Track, window_seconds: float) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class MetricGate:
    """A generic gate: ``provider.query(query)`` must be at most ``max_value`` with ``min_count`` data points."""

    name: str
    provider: MetricsProvider
    query: MetricQuery
    max_value: float
    min_count: int = 1


def restarts_gate(provider: MetricsProvider, selector: str, namespace: str, max_restarts: int) -> MetricGate:
    """The "more than N restarts fails" gate over the pods ``selector`` matches (kubernetes provider)."""
    query = MetricQuery(name="restarts", expr=selector, labels={"namespace": namespace})
    return MetricGate("restarts", provider, query, float(max_restarts))


# --------------------------------------------------------------------------- SPRT


@dataclass(frozen=True, slots=True)
class SprtPlan:
    """Wald's SPRT for a Bernoulli error probability: H0 ``p = p0`` against H1 ``p = p1`` (p0 < p1)."""

    p0: float
    p1: float
    alpha: float = 0.01
    beta: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.p0 < self.p1 < 1:
            raise InputError(f"SPRT hypotheses must satisfy 0 < p0 < p1 < 1, but p0={self.p0}, p1={self.p1} "
                             "were given")
        for name, v in (("alpha", self.alpha), ("beta", self.beta)):
            if not 0 < v < 0.5:
                raise InputError(f"SPRT {name} must be within (0, 0.5), but {v} was given")

    @property
    def upper(self) -> float:
        """Cross it and H1 (bad canary) is accepted."""
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """Cross it and H0 (healthy canary) is accepted."""
        return math.log(self.beta / (1 - self.alpha))

    @property
    def error_step(self) -> float:
        return math.log(self.p1 / self.p0)

    @property
    def success_step(self) -> float:
        return math.log((1 - self.p1) / (1 - self.p0))

    def llr(self, requests: int, errors: int) -> float:
        """Log-likelihood ratio of H1 to H0 after ``requests`` trials with ``errors`` errors."""
        return errors * self.error_step + (requests - errors) * self.success_step

    def drift(self, p: float) -> float:
        """Expected LLR increment per request when the true error probability is ``p``."""
        return p * self.error_step + (1 - p) * self.success_step

    def asn(self) -> tuple[float, float]:
        """Wald's expected sample numbers (E[N | H0], E[N | H1]), ignoring overshoot."""
        under_h0 = (self.alpha * self.upper + (1 - self.alpha) * self.lower) / self.drift(self.p0)
        under_h1 = ((1 - self.beta) * self.upper + self.beta * self.lower) / self.drift(self.p1)
        return under_h0, under_h1

    def decide(self, requests: int, errors: int, min_samples: int = 1, max_samples: int | None = None) -> Verdict:
        llr = self.llr(requests, errors)
        if llr >= self.upper:
            return Verdict.FAIL
        if llr <= self.lower and requests >= min_samples:
            return Verdict.PASS
        if max_samples is not None and requests >= max(max_samples, min_samples):
            # Truncation: decide by which hypothesis the observed rate is nearer.
            return Verdict.FAIL if errors / requests > (self.p0 + self.p1) / 2 else Verdict.PASS
        return Verdict.INCONCLUSIVE


def expected_sample_number(p0: float, p1: float, alpha: float = 0.01, beta: float = 0.05) -> tuple[float, float]:
    """The SPRT's expected requests to a decision under H0 and under H1: the statistical floor for a step."""
    return SprtPlan(p0, p1, alpha, beta).asn()


# --------------------------------------------------------------------------- gates


def _window(ctx: AnalysisContext) -> float:
    return max(ctx.now - ctx.step_started_at, MIN_WINDOW_SECONDS)


def _read(traffic: TrafficSource, track: Track, window: float) -> TrafficCounts | CheckResult:
    try:
        counts = traffic.counts(track, window)
    except MetricsUnavailable as exc:
        return CheckResult(f"{track.value}-traffic", Verdict.FAIL, None, None, f"metrics unavailable: {exc}")
    if counts.requests <= 0:
        return CheckResult(f"{track.value}-traffic", Verdict.FAIL, 0.0, None,
                           f"no {track.value} requests in the last {window:.0f}s: missing data fails safe")
    return counts


def _observe(traffic: TrafficSource, track: Track, window: float) -> TrafficCounts | None:
    """Counts recorded as evidence only (the stable version's errors, for zero-downtime): never a gate,
    so an unreadable baseline does not fail a judge that does not compare against it."""
    try:
        return traffic.counts(track, window)
    except Exception as exc:  # evidence, not a gate: whatever went wrong, the verdict must not change
        _log.info("%s traffic counts unreadable, recorded as no evidence: %s: %s", track.value, type(exc).__name__,
                  " ".join(str(exc).split())[:200])
        return None


def _read_errors(traffic: TrafficSource, track: Track, window: float) -> TrafficCounts | CheckResult:
    """``_read`` for a look: requests and errors only, when the source can give them alone."""
    if not isinstance(traffic, ErrorCountSource):
        return _read(traffic, track, window)
    try:
        requests, errors = traffic.requests(track, window)
    except MetricsUnavailable as exc:
        return CheckResult(f"{track.value}-traffic", Verdict.FAIL, None, None, f"metrics unavailable: {exc}")
    if requests <= 0:
        return CheckResult(f"{track.value}-traffic", Verdict.FAIL, 0.0, None, f"no {track.value} requests yet")
    return TrafficCounts(requests=requests, errors=errors)


def error_rate_check(counts: TrafficCounts, max_rate: float, min_samples: int) -> CheckResult:
    rate = counts.errors / counts.requests
    detail = f"{counts.errors}/{counts.requests} requests failed"
    if counts.requests < min_samples:
        # A fixed threshold on a handful of requests is noise (1 error in 10 is "10%"): hold instead.
        # Catching a bad canary before min_samples is what the sequential judge is for.
        return CheckResult("error-rate", Verdict.INCONCLUSIVE, rate, max_rate,
                           f"{detail}; {min_samples} requests needed for a verdict")
    verdict = Verdict.FAIL if rate > max_rate else Verdict.PASS
    return CheckResult("error-rate", verdict, rate, max_rate, detail)


def p95_check(counts: TrafficCounts, max_ms: float, min_samples: int) -> CheckResult:
    p95 = counts.p95_ms
    if p95 is None and counts.latencies_ms:
        p95 = percentile(counts.latencies_ms, 95)
    if p95 is None or math.isnan(p95):
        return CheckResult("p95-latency", Verdict.FAIL, None, max_ms, "no latency data: missing data fails safe")
    if counts.requests < min_samples:
        return CheckResult("p95-latency", Verdict.INCONCLUSIVE, p95, max_ms,
                           f"{counts.requests} requests, {min_samples} needed for a verdict")
    verdict = Verdict.FAIL if p95 > max_ms else Verdict.PASS
    return CheckResult("p95-latency", verdict, p95, max_ms, f"p95 over {counts.requests} requests")


def gate_check(gate: MetricGate) -> CheckResult:
    try:
        if not gate.provider.is_online():
            return CheckResult(gate.name, Verdict.FAIL, None, gate.max_value,
                               f"{gate.provider.name} provider is offline: missing data fails safe")
        sample = as_sample(gate.provider.query(gate.query))
    except MetricsUnavailable as exc:
        return CheckResult(gate.name, Verdict.FAIL, None, gate.max_value, f"metrics unavailable: {exc}")
    if sample.count < gate.min_count:
        return CheckResult(gate.name, Verdict.FAIL, None, gate.max_value,
                           f"{sample.count} data points, {gate.min_count} needed: missing data fails safe")
    verdict = Verdict.FAIL if sample.value > gate.max_value else Verdict.PASS
    return CheckResult(gate.name, verdict, sample.value, gate.max_value, f"{gate.provider.name}: {gate.query.expr}")


def mann_whitney_check(canary: Sequence[float], baseline: Sequence[float], min_samples: int,
                       confidence: float, tolerance: float) -> CheckResult:
    name = "latency-mann-whitney"
    if len(canary) < min_samples or len(baseline) < min_samples:
        return CheckResult(name, Verdict.INCONCLUSIVE, None, 1 - confidence,
                           f"{len(canary)} canary and {len(baseline)} baseline latency samples, "
                           f"{min_samples} each needed")
    result = mannwhitneyu(list(canary), list(baseline), alternative="greater", method="asymptotic")
    p_value = float(result.pvalue)
    base_median = median(baseline)
    shift = (median(canary) - base_median) / base_median if base_median > 0 else 0.0
    detail = f"canary median {median(canary):.1f} ms vs baseline {base_median:.1f} ms ({shift:+.0%}), p={p_value:.4f}"
    slower = p_value < 1 - confidence and shift > tolerance
    return CheckResult(name, Verdict.FAIL if slower else Verdict.PASS, p_value, 1 - confidence, detail)


# --------------------------------------------------------------------------- judges


class ThresholdAnalysis:
    """Flagger-style gates on the canary alone: error rate, p95 latency, restarts and any extra gates.

    One verdict per interval (it does not stream): the error rate must stay within the strategy's gate
    (``RolloutSettings.error_gate``: 0.5% for a canary, 1% for blue/green, never above ``maxErrorRate``).
    """

    def __init__(self, settings: RolloutSettings, traffic: TrafficSource | None,
                 gates: Sequence[MetricGate] = (), *, strategy: str = "canary") -> None:
        if traffic is None and not gates:
            raise InputError("analysis must have a traffic source or at least one metric gate, but none was given")
        self.settings = settings
        self.traffic = traffic
        self.gates = tuple(gates)
        self.max_error_rate = settings.error_gate(strategy)

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        checks: list[CheckResult] = []
        seen: dict[Track, TrafficCounts] = {}
        if self.traffic is not None:
            read = _read(self.traffic, Track.CANARY, _window(ctx))
            if isinstance(read, CheckResult):
                checks.append(read)
            else:
                seen[Track.CANARY] = read
                checks.append(error_rate_check(read, self.max_error_rate, self.settings.min_samples))
                checks.append(p95_check(read, self.settings.max_p95_ms, self.settings.min_samples))
            stable = _observe(self.traffic, Track.BASELINE, _window(ctx))
            if stable is not None:
                seen[Track.BASELINE] = stable
        checks.extend(gate_check(g) for g in self.gates)
        return replace(AnalysisResult.combine(checks, seen), needed=self.settings.min_samples)


class SequentialAnalysis:
    """Canary against baseline: SPRT on error counts, Mann-Whitney on latency, plus absolute gates.

    It streams: ``look`` runs the SPRT on the evidence so far while the interval runs and fails the step
    the moment Wald's upper boundary is crossed; ``analyse`` at the end of the interval is the only one
    that can pass it.
    """

    def __init__(self, settings: RolloutSettings, traffic: TrafficSource, gates: Sequence[MetricGate] = (), *,
                 strategy: str = "canary", max_samples: int | None = None, confidence: float = 0.98,
                 latency_tolerance: float = 0.10, judge_latency: bool = True) -> None:
        self.settings = settings
        self.traffic = traffic
        self.gates = tuple(gates)
        self.p0_floor, self.p1_floor = settings.sprt_hypotheses(strategy)
        self.alpha, self.beta = settings.sprt.alpha, settings.sprt.beta
        self.min_effect = self.p1_floor - self.p0_floor
        self.max_samples = max_samples
        self.confidence = confidence
        self.latency_tolerance = latency_tolerance
        self.judge_latency = judge_latency
        self.plan_for(0.0)  # validate alpha, beta and the hypotheses now, not at the first step

    def plan_for(self, baseline_rate: float) -> SprtPlan:
        """H0 at the floor p0, or at the baseline's own rate when that is worse; H1 ``min_effect`` above H0."""
        p0 = min(max(baseline_rate, self.p0_floor), 0.9)
        p1 = min(max(self.p1_floor, p0 + self.min_effect), 0.99)
        return SprtPlan(p0, p1, self.alpha, self.beta)

    def sprt_check(self, canary: TrafficCounts, baseline: TrafficCounts, *, final: bool = False) -> CheckResult:
        trusted = baseline.requests >= self.settings.min_samples
        plan = self.plan_for(baseline.errors / baseline.requests if trusted else 0.0)
        max_n = self.max_samples or math.ceil(3 * max(plan.asn()))
        if final:
            # The step's hold budget ends here: truncate now rather than let one more hold count as a failure.
            max_n = min(max_n, canary.requests)
        verdict = plan.decide(canary.requests, canary.errors, self.settings.min_samples, max_n)
        llr = plan.llr(canary.requests, canary.errors)
        detail = (f"{canary.errors}/{canary.requests} canary errors; H0 p={plan.p0:.3f} vs H1 p={plan.p1:.3f}; "
                  f"LLR {llr:.2f} in ({plan.lower:.2f}, {plan.upper:.2f})")
        return CheckResult("error-rate-sprt", verdict, llr, plan.upper, detail)

    def _baseline(self, ctx: AnalysisContext, window: float, *, light: bool = False) -> TrafficCounts | CheckResult:
        baseline = (_read_errors if light else _read)(self.traffic, Track.BASELINE, window)
        if ctx.weight >= 100 and (isinstance(baseline, TrafficCounts) or baseline.value == 0.0):
            # At 100% the canary serves everything, so an idle baseline is expected, not missing data: the
            # SPRT then tests the canary against the healthy-rate floor, and there is nothing to rank against.
            # What the baseline still shows is the previous step's tail (requests served between the last scrape
            # before this step and the switch), too few to rank and never growing: ignore it.
            return TrafficCounts(requests=0, errors=0)
        return baseline

    def look(self, ctx: AnalysisContext) -> AnalysisResult:
        """The SPRT on the counts so far: FAIL once the upper boundary is crossed, else INCONCLUSIVE.

        Only the error test streams: its boundary already bounds false failures at any sample size, and a
        pass needs the whole interval. Missing data here is INCONCLUSIVE; ``analyse`` fails safe on it.
        """
        window = _window(ctx)
        canary = _read_errors(self.traffic, Track.CANARY, window)
        if isinstance(canary, CheckResult):
            return AnalysisResult(Verdict.INCONCLUSIVE, (replace(canary, verdict=Verdict.INCONCLUSIVE),))
        baseline = self._baseline(ctx, window, light=True)
        if isinstance(baseline, CheckResult):
            # No trusted baseline: judge against the floor alone, which is the stricter test.
            baseline = TrafficCounts(requests=0, errors=0)
        check = self.sprt_check(canary, baseline)
        if check.verdict is not Verdict.FAIL:
            return AnalysisResult(Verdict.INCONCLUSIVE, (replace(check, verdict=Verdict.INCONCLUSIVE),))
        return AnalysisResult(Verdict.FAIL, (check,))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        window = _window(ctx)
        checks: list[CheckResult] = []
        canary = _read(self.traffic, Track.CANARY, window)
        baseline = self._baseline(ctx, window)
        for read in (canary, baseline):
            if isinstance(read, CheckResult):
                checks.append(read)
        if isinstance(canary, TrafficCounts):
            checks.append(p95_check(canary, self.settings.max_p95_ms, self.settings.min_samples))
            if isinstance(baseline, TrafficCounts):
                checks.append(self.sprt_check(canary, baseline, final=ctx.final))
                if self.judge_latency and baseline.requests > 0:
                    checks.append(self._latency(canary, baseline))
        checks.extend(gate_check(g) for g in self.gates)
        seen = {track: read for track, read in ((Track.CANARY, canary), (Track.BASELINE, baseline))
                if isinstance(read, TrafficCounts)}
        return replace(AnalysisResult.combine(checks, seen), needed=self.settings.min_samples)

    def _latency(self, canary: TrafficCounts, baseline: TrafficCounts) -> CheckResult:
        enough = min(canary.requests, baseline.requests) >= self.settings.min_samples
        if enough and (not canary.latencies_ms or not baseline.latencies_ms):
            return CheckResult("latency-mann-whitney", Verdict.FAIL, None, 1 - self.confidence,
                               "requests were served but no latency samples came back: missing data fails safe")
        return mann_whitney_check(canary.latencies_ms, baseline.latencies_ms, self.settings.min_samples,
                                  self.confidence, self.latency_tolerance)


def make_analysis(settings: RolloutSettings, traffic: TrafficSource | None,
                  gates: Sequence[MetricGate] = (), *, strategy: str = "canary") -> Analysis:
    """The judge ``settings.judge`` names: ``sprt`` (needs a traffic source) or ``threshold``."""
    if settings.judge == "sprt":
        if traffic is None:
            raise InputError("rollout.judge must be threshold when no traffic source exists, but sprt was given")
        return SequentialAnalysis(settings, traffic, gates, strategy=strategy)
    return ThresholdAnalysis(settings, traffic, gates, strategy=strategy)
