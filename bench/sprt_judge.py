"""Benchmark: how many requests the sequential judge needs, and how often it errs, against the threshold judge.

Run: .venv/bin/python bench/sprt_judge.py [--runs N]. Prints a table and writes bench/results/sprt_judge.json.
Seeded, so figures are reproducible. Requests arrive 10 per analysis look, as a low-traffic canary step would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.rollout.analysis import SequentialAnalysis, error_rate_check, expected_sample_number
from infra.rollout.seams import TrafficCounts, Verdict
from infra.rollout.settings import RolloutSettings

PER_LOOK = 10
BASELINE = TrafficCounts(requests=20_000, errors=200)


def sequential(p: float, seed: int, judge: SequentialAnalysis) -> tuple[Verdict, int]:
    rng = np.random.default_rng(seed)
    n = x = 0
    while True:
        n += PER_LOOK
        x += int(rng.binomial(PER_LOOK, p))
        verdict = judge.sprt_check(TrafficCounts(n, x), BASELINE).verdict
        if verdict is not Verdict.INCONCLUSIVE:
            return verdict, n


def threshold(p: float, seed: int, settings: RolloutSettings) -> tuple[Verdict, int]:
    rng = np.random.default_rng(seed)
    n = x = 0
    while True:
        n += PER_LOOK
        x += int(rng.binomial(PER_LOOK, p))
        verdict = error_rate_check(TrafficCounts(n, x), settings.max_error_rate, settings.min_samples).verdict
        if verdict is not Verdict.INCONCLUSIVE:
            return verdict, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    settings = RolloutSettings()
    judge = SequentialAnalysis(settings, traffic=None)  # type: ignore[arg-type]
    plan = judge.plan_for(0.01)
    asn_h0, asn_h1 = expected_sample_number(plan.p0, plan.p1, plan.alpha, plan.beta)
    print(f"SPRT H0 p0={plan.p0} vs H1 p1={plan.p1}, alpha={plan.alpha}, beta={plan.beta}")
    print(f"statistical floor (Wald ASN): E[N|H0]={asn_h0:.1f} requests, E[N|H1]={asn_h1:.1f} requests")
    rows = []
    print(f"{'canary error rate':>18} {'judge':>10} {'fail %':>7} {'median N':>9} {'p95 N':>6}")
    for p in (0.005, 0.01, 0.03, 0.05, 0.10, 0.30):
        for name, run in (("sprt", lambda p, s: sequential(p, s, judge)),
                          ("threshold", lambda p, s: threshold(p, s, settings))):
            outcomes = [run(p, seed) for seed in range(args.runs)]
            ns = np.array([n for _, n in outcomes])
            fail = sum(v is Verdict.FAIL for v, _ in outcomes) / len(outcomes)
            row = {"p": p, "judge": name, "fail_rate": fail, "median_n": float(np.median(ns)),
                   "p95_n": float(np.percentile(ns, 95))}
            rows.append(row)
            print(f"{p:>18.3f} {name:>10} {fail * 100:>6.1f}% {row['median_n']:>9.0f} {row['p95_n']:>6.0f}")
    out = Path(__file__).parent / "results" / "sprt_judge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "per_look": PER_LOOK, "p0": plan.p0, "p1": plan.p1,
                               "alpha": plan.alpha, "beta": plan.beta, "asn_h0": asn_h0, "asn_h1": asn_h1,
                               "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
