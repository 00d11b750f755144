"""The statistical judge under seeded simulation: SPRT error control and speed, ASN, Mann-Whitney, invariants.

Simulations are seeded, so every figure asserted here is reproducible; the bounds are the test's
documented error budgets (alpha = 0.01, beta = 0.05), not fitted to one lucky run.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.errors import InputError
from infra.rollout.analysis import SequentialAnalysis, SprtPlan, expected_sample_number, mann_whitney_check
from infra.rollout.seams import TrafficCounts, Verdict
from infra.settings.rollout import RolloutSettings

BASELINE = TrafficCounts(requests=20_000, errors=200)  # a healthy 1% baseline


def run(p_true: float, seed: int, per_look: int = 10, settings_: RolloutSettings | None = None,
        max_looks: int = 1000) -> tuple[Verdict, int]:
    """Feed cumulative canary counts, ``per_look`` requests per analysis, until a verdict."""
    rng = np.random.default_rng(seed)
    judge = SequentialAnalysis(settings_ or RolloutSettings(), traffic=None)  # type: ignore[arg-type]
    n = errors = 0
    for _ in range(max_looks):
        n += per_look
        errors += int(rng.binomial(per_look, p_true))
        verdict = judge.sprt_check(TrafficCounts(n, errors), BASELINE).verdict
        if verdict is not Verdict.INCONCLUSIVE:
            return verdict, n
    return Verdict.INCONCLUSIVE, n


def test_clearly_bad_canary_is_caught_within_a_few_dozen_requests() -> None:
    outcomes = [run(0.30, seed) for seed in range(300)]
    assert all(v is Verdict.FAIL for v, _ in outcomes)
    ns = sorted(n for _, n in outcomes)
    assert ns[len(ns) // 2] <= 20 and ns[-1] <= 60, ns[-10:]
    # The threshold judge cannot decide before min_samples (50) requests at all.
    assert ns[len(ns) // 2] < RolloutSettings().min_samples


def test_bad_canary_at_h1_is_failed_at_least_one_minus_beta_of_the_time() -> None:
    outcomes = [run(0.05, seed) for seed in range(300)]
    failed = sum(v is Verdict.FAIL for v, _ in outcomes) / len(outcomes)
    assert failed >= 0.93, failed  # beta = 0.05 nominal


def test_healthy_canary_is_not_failed_by_noise() -> None:
    outcomes = [run(0.01, seed) for seed in range(400)]
    false_fail = sum(v is Verdict.FAIL for v, _ in outcomes) / len(outcomes)
    passed = sum(v is Verdict.PASS for v, _ in outcomes) / len(outcomes)
    assert false_fail <= 0.02, false_fail  # alpha = 0.01 nominal, plus truncation
    assert passed >= 0.98


def test_healthy_canary_at_half_the_baseline_rate_always_passes() -> None:
    assert all(run(0.005, seed)[0] is Verdict.PASS for seed in range(200))


def test_asn_matches_simulation_one_request_per_look() -> None:
    asn_h0, asn_h1 = expected_sample_number(0.01, 0.05, alpha=0.01, beta=0.05)
    assert asn_h0 == pytest.approx(117.7, abs=0.1) and asn_h1 == pytest.approx(101.2, abs=0.1)
    plan = SprtPlan(0.01, 0.05)
    for p, expected in ((0.01, asn_h0), (0.05, asn_h1)):
        rng = np.random.default_rng(7)
        ns = []
        for _ in range(400):
            n = x = 0
            while plan.lower < plan.llr(n, x) < plan.upper:
                n += 1
                x += int(rng.random() < p)
            ns.append(n)
        # Wald's formula ignores overshoot, so the simulated mean is a little above it.
        assert expected * 0.9 <= float(np.mean(ns)) <= expected * 1.35, (p, np.mean(ns), expected)


def test_asn_grows_as_the_hypotheses_close_in() -> None:
    wide = expected_sample_number(0.01, 0.10)
    narrow = expected_sample_number(0.01, 0.03)
    assert narrow[0] > wide[0] and narrow[1] > wide[1]
    stricter = expected_sample_number(0.01, 0.05, alpha=0.001, beta=0.01)
    assert stricter[0] > expected_sample_number(0.01, 0.05)[0]


@pytest.mark.parametrize(("p0", "p1", "alpha", "beta", "field"), [
    (0.05, 0.01, 0.01, 0.05, "p0 < p1"),
    (0.0, 0.05, 0.01, 0.05, "p0 < p1"),
    (0.01, 0.05, 0.0, 0.05, "alpha"),
    (0.01, 0.05, 0.01, 0.6, "beta"),
])
def test_plan_rejects_bad_parameters(p0: float, p1: float, alpha: float, beta: float, field: str) -> None:
    with pytest.raises(InputError, match=field):
        SprtPlan(p0, p1, alpha, beta)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), x=st.integers(0, 5000), min_samples=st.integers(1, 500))
def test_sprt_verdict_is_monotone_in_errors_and_never_passes_early(n: int, x: int, min_samples: int) -> None:
    x = min(x, n)
    plan = SprtPlan(0.01, 0.05)
    verdict = plan.decide(n, x, min_samples)
    if verdict is Verdict.PASS:
        assert n >= min_samples
    if verdict is Verdict.FAIL and x < n:
        assert plan.decide(n, x + 1, min_samples) is Verdict.FAIL
    if verdict is Verdict.PASS and x > 0:
        assert plan.decide(n, x - 1, min_samples) is Verdict.PASS


def test_truncation_decides_a_canary_between_the_hypotheses() -> None:
    verdict, n = run(0.03, seed=1, per_look=50)
    assert verdict in (Verdict.PASS, Verdict.FAIL)
    assert n <= 3 * max(expected_sample_number(0.01, 0.05)) + 50


# --------------------------------------------------------------------------- Mann-Whitney


def lognormal(seed: int, n: int, median_ms: float) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(float(v) for v in rng.lognormal(np.log(median_ms), 0.4, n))


def test_mann_whitney_fails_a_slower_canary() -> None:
    check = mann_whitney_check(lognormal(1, 200, 180.0), lognormal(2, 2000, 100.0), 50, 0.98, 0.10)
    assert check.verdict is Verdict.FAIL and "+" in check.detail


def test_mann_whitney_passes_same_distribution_across_seeds() -> None:
    verdicts = [mann_whitney_check(lognormal(s, 200, 100.0), lognormal(s + 1000, 2000, 100.0), 50, 0.98, 0.10).verdict
                for s in range(100)]
    assert sum(v is Verdict.FAIL for v in verdicts) <= 2


def test_mann_whitney_ignores_a_significant_but_harmless_shift() -> None:
    canary, baseline = lognormal(3, 20_000, 104.0), lognormal(4, 20_000, 100.0)
    check = mann_whitney_check(canary, baseline, 50, 0.98, 0.10)
    assert check.value is not None and check.value < 0.02, "the 4% shift is statistically significant"
    assert check.verdict is Verdict.PASS, "but under the 10% tolerance"


def test_mann_whitney_is_inconclusive_with_few_samples() -> None:
    check = mann_whitney_check(lognormal(1, 49, 500.0), lognormal(2, 2000, 100.0), 50, 0.98, 0.10)
    assert check.verdict is Verdict.INCONCLUSIVE and "49 canary" in check.detail
