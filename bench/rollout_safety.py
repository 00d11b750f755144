"""Rollout safety benchmark: Gantry's sequential judge against Flagger-style threshold analysis, on the real sandbox.

Run: ``.venv/bin/python bench/rollout_safety.py`` (full, ~20 minutes) or ``--quick`` (a smoke run).

Every run is a real canary on the local sandbox: HAProxy shifts live traffic (200 rps, loopback),
the demo app misbehaves per scenario, Prometheus scrapes it every second, and the real rollout
engine (factory, HaproxyTarget, PrometheusTraffic) decides. Only the judge differs:

* ``gantry``: the stack's default, the sequential judge (SPRT on errors against the baseline,
  Mann-Whitney on latency, min-sample guard), threshold 1 as the local stack sets it;
* ``flagger-t1`` / ``flagger-t5``: Flagger's built-in checks, request success rate >= 99% and
  request duration P99 <= 500 ms over the interval, with ``threshold`` 1 (its code default) and 5
  (its docs' examples).

Same steps (10/25/50/100), same interval, same load. Reported per scenario and judge: time to detect
(canary start to the rollback decision), time to restore (decision to HAProxy serving stable 100%,
read from the runtime API), blast radius (failed requests the canary served, count and share of
all requests), false rollbacks (healthy runs rolled back) and missed rollbacks (faulty runs promoted).
Results go to ``bench/results/rollout_safety.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.spec import Strategy  # noqa: E402
from infra.config import load_stack  # noqa: E402
from infra.rollout import factory  # noqa: E402
from infra.rollout.analysis import SprtPlan, expected_sample_number  # noqa: E402
from infra.rollout.clock import SystemClock  # noqa: E402
from infra.rollout.engine import Engine  # noqa: E402
from infra.rollout.errors import MetricsUnavailable  # noqa: E402
from infra.rollout.journal import Entry, SqliteJournal  # noqa: E402
from infra.rollout.lock import SqliteLock  # noqa: E402
from infra.rollout.metrics.prometheus import PrometheusProvider, PrometheusTraffic  # noqa: E402
from infra.rollout.scheduler import RolloutState  # noqa: E402
from infra.rollout.seams import (  # noqa: E402
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    StackName,
    Track,
    Verdict,
)
from infra.sandbox import lifecycle  # noqa: E402
from infra.sandbox.haproxy import RuntimeApi  # noqa: E402
from infra.sandbox.loadgen import LoadGenerator  # noqa: E402
from infra.sandbox.settings import FaultSpec  # noqa: E402
from infra.sandbox.state import SandboxState  # noqa: E402
from infra.sandbox.state import load as load_state  # noqa: E402
from infra.sandbox.target import sandbox_traffic  # noqa: E402

RATE = 200.0
STEPS = [10, 25, 50, 100]
SCENARIOS = ("healthy", "errors-2pct", "errors-20pct", "latency-800ms", "flapping-errors", "metrics-outage")
JUDGES = ("gantry", "flagger-t1", "flagger-t5")


class FlaggerAnalysis:
    """Flagger's built-in metric checks on the canary alone: success rate >= 99%, P99 <= 500 ms, over the interval."""

    def __init__(self, traffic: PrometheusTraffic, min_success: float = 99.0, max_p99_ms: float = 500.0) -> None:
        self.traffic, self.min_success, self.max_p99_ms = traffic, min_success, max_p99_ms

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        window = max(ctx.now - ctx.step_started_at, 1.0)
        try:
            requests, errors = self.traffic.requests(Track.CANARY, window)
            p99 = self.traffic.quantile_ms(Track.CANARY, 0.99, window)
        except MetricsUnavailable as exc:
            # Flagger counts a metric it cannot read as a failed check.
            return AnalysisResult.combine([CheckResult("request-success-rate", Verdict.FAIL, None, None, str(exc))])
        success = 100.0 * (requests - errors) / requests if requests else None
        checks = [
            CheckResult("request-success-rate", Verdict.PASS if success is not None and success >= self.min_success
                        else Verdict.FAIL, success, self.min_success, f"{requests} requests"),
            CheckResult("request-duration", Verdict.PASS if p99 is not None and p99 <= self.max_p99_ms
                        else Verdict.FAIL, p99, self.max_p99_ms, "p99 ms"),
        ]
        return AnalysisResult.combine(checks)


@dataclass
class RunResult:
    scenario: str
    judge: str
    outcome: str
    canary: str
    detect_s: float | None = None
    restore_ms: float | None = None
    canary_failed: int = 0
    canary_slow: int = 0
    total_requests: int = 0
    seconds: float = 0.0
    reason: str = ""

    @property
    def blast_share(self) -> float:
        return self.canary_failed / self.total_requests if self.total_requests else 0.0


class Recorder:
    """Engine observer: timestamps the canary's first weight and the rollback decision; times the restore."""

    def __init__(self, api: RuntimeApi, on_canary_start: Callable[[], None]) -> None:
        self.api = api
        self.on_canary_start = on_canary_start
        self.canary_start: float | None = None
        self.decision_at: float | None = None
        self.restored_at: float | None = None
        self.reason = ""
        self._poller: threading.Thread | None = None

    def on_entry(self, state: RolloutState, entry: Entry) -> None:
        data = entry.data
        if entry.kind.value == "applied" and data.get("action") == "set_weight" and self.canary_start is None:
            self.canary_start = time.time()
            self.on_canary_start()
        if entry.kind.value == "decision" and data.get("decision") == "rollback" and self.decision_at is None:
            self.decision_at = time.time()
            self.reason = str(data.get("reason", ""))
            self._poller = threading.Thread(target=self._poll, daemon=True)
            self._poller.start()

    def on_wait(self, state: RolloutState, until: float, now: float) -> None:
        return

    def _poll(self) -> None:
        # The restore is done when HAProxy itself says the canary takes nothing and stable everything.
        deadline = time.time() + 30
        while time.time() < deadline:
            w = self.api.weights("be_web")
            if w.get("canary", 0) == 0 and w.get("stable", 0) == 100:
                self.restored_at = time.time()
                return
            time.sleep(0.002)

    def join(self) -> None:
        if self._poller is not None:
            self._poller.join(timeout=35)


class Bench:
    def __init__(self, project: Path, interval: str) -> None:
        self.project = project
        self.interval = interval
        self.cfg = load_stack("local", project / "stacks")
        self.st: SandboxState = lifecycle.up(project)
        self.api = RuntimeApi(Path(self.st.haproxy_socket))
        self.journal = SqliteJournal(project / ".gantry" / "journal.db")
        self.counter = 0
        lifecycle.wait_scraped(self.st, "v1", timeout=20)

    def close(self) -> None:
        lifecycle.down(self.project)

    def stable_image(self) -> str:
        fresh = load_state(Path(self.st.directory))
        assert fresh is not None
        slot = fresh.services["web"].slots["stable"]
        assert slot is not None
        return slot.image

    def run(self, scenario: str, judge: str) -> RunResult:
        self.counter += 1
        version = f"r{self.counter}"
        image = f"demo:{version}"
        fault = {"errors-2pct": FaultSpec(error_rate=0.02), "errors-20pct": FaultSpec(error_rate=0.2),
                 "latency-800ms": FaultSpec(latency_ms=800)}.get(scenario, FaultSpec())
        lifecycle.set_fault(self.project, version, fault)
        threshold = {"gantry": self.cfg.rollout.threshold, "flagger-t1": 1, "flagger-t5": 5}[judge]
        settings = self.cfg.rollout.model_copy(update={"interval": self.interval, "threshold": threshold,
                                                       "steps": STEPS})
        baseline = self.stable_image()
        parts = factory.build(project=self.project, stack=StackName("local"), service="web", config=self.cfg,
                              settings=settings, strategy=Strategy.CANARY, image=image)
        analysis = parts.analysis
        if judge != "gantry":
            analysis = FlaggerAnalysis(sandbox_traffic(PrometheusProvider(self.st.prometheus_url), "web", image,
                                                       baseline))
        stop_flap = threading.Event()
        prom_stopped = False

        def canary_started() -> None:
            nonlocal prom_stopped
            if scenario == "flapping-errors":
                threading.Thread(target=self._flap, args=(version, stop_flap), daemon=True).start()
            if scenario == "metrics-outage":
                os.kill(self.st.prometheus_pid, signal.SIGSTOP)
                prom_stopped = True

        rec = Recorder(self.api, canary_started)
        clock = SystemClock()
        engine = Engine(target=parts.target, analysis=analysis, journal=self.journal,
                        lock=SqliteLock(self.journal.path, clock), clock=clock, observer=rec, poll=0.05)
        load = LoadGenerator(self.st.frontend_url("web"), rate_rps=RATE, max_seconds=240,
                             max_requests=int(RATE * 240)).start()
        time.sleep(2.0)  # the baseline needs a few scrapes of its own
        began = time.time()
        try:
            out = engine.start(stack=StackName("local"), service="web", image=image, plan=parts.plan, force=True)
        finally:
            stop_flap.set()
            if prom_stopped:
                os.kill(self.st.prometheus_pid, signal.SIGCONT)
            rec.join()
            time.sleep(0.5)
            load.stop()
        offset = load.started_at - time.monotonic() + time.time()  # monotonic -> wall clock
        start_t = (rec.canary_start or began) - offset
        recs = [r for r in load.records() if r.t >= start_t]
        res = RunResult(scenario, judge, out.phase.value, version, seconds=time.time() - began, reason=out.reason)
        res.total_requests = len(recs)
        res.canary_failed = sum(1 for r in recs if r.version == version and r.failed)
        res.canary_slow = sum(1 for r in recs if r.version == version and r.latency_ms > 500)
        if rec.decision_at is not None and rec.canary_start is not None:
            res.detect_s = rec.decision_at - rec.canary_start
        if rec.restored_at is not None and rec.decision_at is not None:
            res.restore_ms = 1000.0 * (rec.restored_at - rec.decision_at)
        return res

    def _flap(self, version: str, stop: threading.Event) -> None:
        bad = True
        while not stop.is_set():
            try:
                lifecycle.set_fault(self.project, version, FaultSpec(error_rate=0.3 if bad else 0.0))
            except Exception:  # the canary may be gone already (rolled back)
                return
            bad = not bad
            stop.wait(2.0)


def expected_outcome(scenario: str) -> str:
    return "promoted" if scenario == "healthy" else "rolled_back"


def summarise(results: list[RunResult]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for scenario in SCENARIOS:
        for judge in JUDGES:
            rs = [r for r in results if r.scenario == scenario and r.judge == judge]
            if not rs:
                continue
            rolled = [r for r in rs if r.outcome == "rolled_back"]
            detect = [r.detect_s for r in rolled if r.detect_s is not None]
            restore = [r.restore_ms for r in rolled if r.restore_ms is not None]
            wrong = [r for r in rs if r.outcome != expected_outcome(scenario)]
            rows.append({
                "scenario": scenario, "judge": judge, "runs": len(rs), "rolled_back": len(rolled),
                "promoted": sum(1 for r in rs if r.outcome == "promoted"),
                "detect_s_median": statistics.median(detect) if detect else None,
                "detect_s_max": max(detect) if detect else None,
                "restore_ms_median": statistics.median(restore) if restore else None,
                "restore_ms_max": max(restore) if restore else None,
                "blast_failed_mean": statistics.mean(r.canary_failed for r in rs),
                "blast_share_mean": statistics.mean(r.blast_share for r in rs),
                "slow_canary_mean": statistics.mean(r.canary_slow for r in rs),
                "false_rollbacks": len(wrong) if scenario == "healthy" else 0,
                "missed_rollbacks": len(wrong) if scenario != "healthy" else 0,
            })
    return rows


def floor(interval_s: float) -> dict[str, float]:
    """The SPRT's statistical floor for the first step: expected requests to a decision, in seconds."""
    plan = SprtPlan(0.01, 0.05)
    asn_h0, asn_h1 = expected_sample_number(0.01, 0.05)
    canary_rps = RATE * STEPS[0] / 100
    n_20 = plan.upper / plan.drift(0.2)
    return {"p0": 0.01, "p1": 0.05, "alpha": plan.alpha, "beta": plan.beta, "canary_rps": canary_rps,
            "asn_h0_requests": asn_h0, "asn_h1_requests": asn_h1, "asn_h0_s": asn_h0 / canary_rps,
            "asn_h1_s": asn_h1 / canary_rps, "n_at_20pct_requests": n_20, "n_at_20pct_s": n_20 / canary_rps,
            "interval_s": interval_s}


def targets(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    def row(s: str, j: str) -> dict[str, object]:
        return next((r for r in rows if r["scenario"] == s and r["judge"] == j), {})

    g20, f5 = row("errors-20pct", "gantry"), row("errors-20pct", "flagger-t5")
    gh = row("healthy", "gantry")
    restores = [float(str(r["restore_ms_max"])) for r in rows if r["judge"] == "gantry" and r["restore_ms_max"]]
    det = g20.get("detect_s_max")
    blast_g, blast_f5 = g20.get("blast_failed_mean"), f5.get("blast_failed_mean")
    out: dict[str, dict[str, object]] = {
        "detect_20pct_within_10s": {"value": det, "met": det is not None and float(str(det)) <= 10.0
                                    and g20.get("missed_rollbacks") == 0},
        "restore_within_1s": {"value_ms": max(restores) if restores else None,
                              "met": bool(restores) and max(restores) <= 1000.0},
        "blast_radius_quarter_of_threshold5": {
            "gantry": blast_g, "flagger_t5": blast_f5,
            "met": blast_g is not None and blast_f5 is not None
            and float(str(blast_g)) <= float(str(blast_f5)) / 4},
        "zero_false_rollbacks_in_20_healthy": {"runs": gh.get("runs"), "false": gh.get("false_rollbacks"),
                                               "met": (gh.get("runs") or 0) >= 20  # type: ignore[operator]
                                               and gh.get("false_rollbacks") == 0},
    }
    return out


def fmt(v: object, spec: str = ".1f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def markdown(doc: dict[str, object]) -> str:
    rows = doc["rows"]
    assert isinstance(rows, list)
    lines = [
        "# Rollout safety: sequential judge vs Flagger-style threshold analysis",
        "",
        f"Machine: {doc['machine']}. Date: {doc['date']}. Command: `{doc['command']}`.",
        f"Load {RATE:.0f} rps on loopback, steps {STEPS}, interval {doc['interval']}, real HAProxy + Prometheus "
        "(1 s scrapes) + demo app; the real rollout engine decides.",
        "",
        "| scenario | judge | runs | rolled back | promoted | detect s (median / max) | restore ms (median / max) "
        "| blast: failed canary requests (mean) | blast share | slow canary req (>500 ms) | false rb | missed rb |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['judge']} | {r['runs']} | {r['rolled_back']} | {r['promoted']} | "
            f"{fmt(r['detect_s_median'])} / {fmt(r['detect_s_max'])} | "
            f"{fmt(r['restore_ms_median'], '.0f')} / {fmt(r['restore_ms_max'], '.0f')} | "
            f"{fmt(r['blast_failed_mean'])} | {fmt(100 * float(r['blast_share_mean']), '.2f')}% | "
            f"{fmt(r['slow_canary_mean'])} | {r['false_rollbacks']} | {r['missed_rollbacks']} |")
    fl = doc["floor"]
    assert isinstance(fl, dict)
    lines += [
        "",
        f"Statistical floor (SPRT p0={fl['p0']}, p1={fl['p1']}, alpha={fl['alpha']}, beta={fl['beta']}, canary at "
        f"{fl['canary_rps']:.0f} rps on the first step): E[N|H0] = {fl['asn_h0_requests']:.0f} requests "
        f"({fl['asn_h0_s']:.1f} s), E[N|H1] = {fl['asn_h1_requests']:.0f} requests ({fl['asn_h1_s']:.1f} s); "
        f"at 20% errors ~{fl['n_at_20pct_requests']:.0f} requests ({fl['n_at_20pct_s']:.1f} s).",
        "",
        "Targets:",
    ]
    tg = doc["targets"]
    assert isinstance(tg, dict)
    for name, t in tg.items():
        shown = json.dumps({k: v for k, v in t.items() if k != "met"})
        lines.append(f"- {name}: {'MET' if t['met'] else 'NOT met'} ({shown})")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 healthy runs, 1 run per fault")
    parser.add_argument("--healthy-runs", type=int, default=20, help="healthy runs for the gantry judge")
    parser.add_argument("--baseline-healthy-runs", type=int, default=20, help="healthy runs per Flagger judge")
    parser.add_argument("--faulty-runs", type=int, default=3, help="runs per faulty scenario and judge")
    parser.add_argument("--interval", default="5s", help="analysis interval, the same for every judge")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.quick:
        args.healthy_runs, args.baseline_healthy_runs, args.faulty_runs = 2, 1, 1
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"--scenarios must be among {', '.join(SCENARIOS)}, but {sorted(unknown)} was given")
    work = Path(tempfile.mkdtemp(prefix="gantry-bench-"))
    (work / "stacks").mkdir()
    shutil.copyfile(ROOT / "stacks" / "Pulumi.local.yaml", work / "stacks" / "Pulumi.local.yaml")
    bench = Bench(work, args.interval)
    results: list[RunResult] = []
    t0 = time.time()
    try:
        plan: list[tuple[str, str]] = []
        for scenario in scenarios:
            for judge in JUDGES:
                n = args.faulty_runs
                if scenario == "healthy":
                    n = args.healthy_runs if judge == "gantry" else args.baseline_healthy_runs
                plan += [(scenario, judge)] * n
        for i, (scenario, judge) in enumerate(plan, 1):
            r = bench.run(scenario, judge)
            results.append(r)
            print(f"[{i}/{len(plan)} {time.time() - t0:5.0f}s] {scenario:16} {judge:10} {r.outcome:11} "
                  f"detect={fmt(r.detect_s)}s restore={fmt(r.restore_ms, '.0f')}ms "
                  f"blast={r.canary_failed}/{r.total_requests} ({r.reason[:60]})", flush=True)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    rows = summarise(results)
    doc: dict[str, object] = {
        "benchmark": "rollout_safety",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, "
                   f"Python {platform.python_version()}",
        "command": "python bench/rollout_safety.py" + (" --quick" if args.quick else ""),
        "interval": args.interval, "rate_rps": RATE, "steps": STEPS, "quick": args.quick,
        "wall_seconds": round(time.time() - t0, 1),
        "floor": floor(float(args.interval.rstrip("s"))),
        "rows": rows, "targets": targets(rows),
        "runs": [asdict(r) | {"blast_share": r.blast_share} for r in results],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "rollout_safety_quick" if args.quick else "rollout_safety"
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    md = markdown(doc)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
