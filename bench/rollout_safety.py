"""Rollout safety benchmark: Gantry's streaming sequential judge against Flagger-style analysis, on the real sandbox.

Run: ``.venv/bin/python bench/rollout_safety.py --workers 3`` (full: 10 runs per faulty scenario and judge, 40
healthy and 20 0.3%-error Gantry runs, 5 of each per Flagger judge; about 95 minutes of runs, spread over three
sandboxes side by side) or ``--quick`` (a smoke run).

Every run is a real canary on the local sandbox: HAProxy shifts live traffic (200 rps, loopback),
the demo app misbehaves per scenario, Prometheus scrapes it every second, and the real rollout
engine (factory, HaproxyTarget, PrometheusTraffic) decides. Only the judge differs:

* ``gantry``: the stack's default, the streaming sequential judge (SPRT at the seed's 99.5% gate,
  0.3% against 2%, looking at every scrape and failing the moment Wald's boundary is crossed;
  Mann-Whitney on latency at the end of each interval), threshold 1 as the local stack sets it;
* ``flagger-t1`` / ``flagger-t5``: Flagger's built-in checks, request success rate >= 99% and
  request duration P99 <= 500 ms over the interval, with ``threshold`` 1 (its code default) and 5
  (its docs' examples).

Same steps (10/25/50/100), same interval, same load, and the judges interleaved run by run, so a
change in the machine's load falls on all of them alike. Scenarios: healthy and a 0.3%-error canary
(both must be promoted), 2% and 20% errors, 800 ms latency, errors flapping 30%/0% every 2 s, and a
Prometheus outage (all must be rolled back). Reported per scenario and judge: time to detect (canary
start to the rollback decision) and blast radius (failed requests the canary served) as median, max and
a distribution-free 95% confidence interval for the median (order statistics); time to restore
(decision to HAProxy serving stable 100%, read from the runtime API); false and missed rollbacks.
Every run records the machine's load average. Results go to ``bench/results/rollout_safety.{json,md}``,
with a ``targets`` object: each target's ``value``, ``goal`` and ``met``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
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
from infra import plugins  # noqa: E402
from infra.config import load_stack  # noqa: E402
from infra.rollout import factory  # noqa: E402
from infra.rollout.analysis import SprtPlan, expected_sample_number  # noqa: E402
from infra.rollout.clock import SystemClock  # noqa: E402
from infra.rollout.engine import Engine  # noqa: E402
from infra.rollout.entries import Analysed, Applied, Decided, Logged, SetWeight  # noqa: E402
from infra.rollout.errors import MetricsUnavailable  # noqa: E402
from infra.rollout.journal import SqliteJournal  # noqa: E402
from infra.rollout.lock import SqliteLock  # noqa: E402
from infra.rollout.metrics.prometheus import PrometheusProvider, PrometheusTraffic  # noqa: E402
from infra.rollout.scheduler import RolloutState  # noqa: E402
from infra.rollout.seams import (  # noqa: E402
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    Decision,
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
from infra.settings.rollout import RolloutSettings, parse_duration  # noqa: E402

plugins.load()  # stack config validates against the registered backends

RATE = 200.0
STEPS = [10, 25, 50, 100]
SCENARIOS = ("healthy", "errors-0.3pct", "errors-2pct", "errors-20pct", "latency-800ms", "flapping-errors",
             "metrics-outage")
MUST_PROMOTE = ("healthy", "errors-0.3pct")
FAULTS = {"errors-0.3pct": FaultSpec(error_rate=0.003), "errors-2pct": FaultSpec(error_rate=0.02),
          "errors-20pct": FaultSpec(error_rate=0.2), "latency-800ms": FaultSpec(latency_ms=800)}
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
    load1: float = 0.0
    early: bool = False
    """The rollback came from a streaming look, before the interval ended."""

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
        self.early = False
        self._poller: threading.Thread | None = None

    def on_entry(self, state: RolloutState, entry: Logged) -> None:
        body = entry.body
        if isinstance(body, Applied) and isinstance(body.effect, SetWeight) and self.canary_start is None:
            self.canary_start = time.time()
            self.on_canary_start()
        if isinstance(body, Analysed) and body.early:
            self.early = True
        if isinstance(body, Decided) and body.decision is Decision.ROLLBACK and self.decision_at is None:
            self.decision_at = time.time()
            self.reason = body.reason
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
        fault = FAULTS.get(scenario, FaultSpec())
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
                        lock=SqliteLock(self.journal.path, clock), clock=clock, observer=rec, poll=0.05,
                        look_every=float(settings.poll_interval))
        load1 = os.getloadavg()[0]
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
        res = RunResult(scenario, judge, out.phase.value, version, seconds=time.time() - began, reason=out.reason,
                        load1=max(load1, os.getloadavg()[0]), early=rec.early)
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
    return "promoted" if scenario in MUST_PROMOTE else "rolled_back"


def median_ci(xs: list[float], confidence: float = 0.95) -> tuple[float | None, float | None, float]:
    """Distribution-free interval for the median: order statistics (k, n+1-k) with the smallest coverage
    >= ``confidence`` (binomial, p = 1/2). Returns (low, high, coverage); min..max below 6 samples."""
    s = sorted(xs)
    n = len(s)
    if not n:
        return None, None, 0.0
    below = 0.0  # P(Binomial(n, 1/2) <= k - 1)
    k = 0
    while True:
        nxt = below + math.comb(n, k) / 2 ** n
        if 1 - 2 * nxt < confidence or k + 1 > n // 2:
            break
        below, k = nxt, k + 1
    lo, hi = (s[k - 1], s[n - k]) if k >= 1 else (s[0], s[-1])
    return lo, hi, (1 - 2 * below) if k >= 1 else 1 - 2 / 2 ** n


def describe(xs: list[float]) -> dict[str, float | None]:
    lo, hi, cover = median_ci(xs)
    return {"n": len(xs), "median": statistics.median(xs) if xs else None, "max": max(xs) if xs else None,
            "mean": statistics.mean(xs) if xs else None, "ci95_low": lo, "ci95_high": hi, "ci_coverage": cover}


def summarise(results: list[RunResult]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for scenario in SCENARIOS:
        for judge in JUDGES:
            rs = [r for r in results if r.scenario == scenario and r.judge == judge]
            if not rs:
                continue
            rolled = [r for r in rs if r.outcome == "rolled_back"]
            restore = [r.restore_ms for r in rolled if r.restore_ms is not None]
            wrong = [r for r in rs if r.outcome != expected_outcome(scenario)]
            rows.append({
                "scenario": scenario, "judge": judge, "runs": len(rs), "rolled_back": len(rolled),
                "promoted": sum(1 for r in rs if r.outcome == "promoted"),
                "early_rollbacks": sum(1 for r in rolled if r.early),
                "detect_s": describe([r.detect_s for r in rolled if r.detect_s is not None]),
                "blast_failed": describe([float(r.canary_failed) for r in rs]),
                "restore_ms_median": statistics.median(restore) if restore else None,
                "restore_ms_max": max(restore) if restore else None,
                "blast_share_mean": statistics.mean(r.blast_share for r in rs),
                "slow_canary_mean": statistics.mean(r.canary_slow for r in rs),
                "false_rollbacks": len(wrong) if scenario in MUST_PROMOTE else 0,
                "missed_rollbacks": len(wrong) if scenario not in MUST_PROMOTE else 0,
                "load1_median": statistics.median(r.load1 for r in rs),
                "load1_max": max(r.load1 for r in rs),
            })
    return rows


def floor(interval_s: float, settings: RolloutSettings) -> dict[str, float]:
    """The SPRT's statistical floor for the first step: expected requests to a decision, in seconds."""
    p0, p1 = settings.sprt_hypotheses("canary")
    plan = SprtPlan(p0, p1, settings.sprt.alpha, settings.sprt.beta)
    asn_h0, asn_h1 = expected_sample_number(p0, p1, plan.alpha, plan.beta)
    canary_rps = RATE * STEPS[0] / 100
    n_20 = plan.upper / plan.drift(0.2)
    return {"p0": p0, "p1": p1, "alpha": plan.alpha, "beta": plan.beta, "canary_rps": canary_rps,
            "asn_h0_requests": asn_h0, "asn_h1_requests": asn_h1, "asn_h0_s": asn_h0 / canary_rps,
            "asn_h1_s": asn_h1 / canary_rps, "n_at_20pct_requests": n_20, "n_at_20pct_s": n_20 / canary_rps,
            "interval_s": interval_s}


def targets(rows: list[dict[str, object]], healthy_goal: int) -> dict[str, dict[str, object]]:
    def row(s: str, j: str) -> dict[str, object]:
        return next((r for r in rows if r["scenario"] == s and r["judge"] == j), {})

    def stat(r: dict[str, object], key: str, field: str) -> float | None:
        d = r.get(key)
        v = d.get(field) if isinstance(d, dict) else None
        return None if v is None else float(v)

    def share(r: dict[str, object], key: str) -> float | None:
        runs = r.get("runs")
        return None if not runs else float(str(r[key])) / float(str(runs))

    g20, t1, t5 = row("errors-20pct", "gantry"), row("errors-20pct", "flagger-t1"), row("errors-20pct", "flagger-t5")
    med, mx = stat(g20, "detect_s", "median"), stat(g20, "detect_s", "max")
    blast_g, blast_t1, blast_t5 = (stat(r, "blast_failed", "mean") for r in (g20, t1, t5))
    rb2, pr03 = share(row("errors-2pct", "gantry"), "rolled_back"), share(row("errors-0.3pct", "gantry"), "promoted")
    gh = row("healthy", "gantry")
    missed20 = g20.get("missed_rollbacks")
    return {
        "detect_20pct_median_s": {"value": med, "goal": "<= 2.5", "met": med is not None and med <= 2.5
                                  and missed20 == 0},
        "detect_20pct_max_s": {"value": mx, "goal": "<= 4.0", "met": mx is not None and mx <= 4.0 and missed20 == 0},
        "blast_20pct_vs_flagger_t1": {
            "value": None if blast_g is None or not blast_t1 else blast_g / blast_t1, "goal": "<= 0.5",
            "gantry_mean_failed": blast_g, "flagger_t1_mean_failed": blast_t1,
            "met": blast_g is not None and blast_t1 is not None and blast_g <= blast_t1 / 2},
        "blast_20pct_vs_flagger_t5": {
            "value": None if blast_g is None or not blast_t5 else blast_g / blast_t5, "goal": "<= 0.125",
            "gantry_mean_failed": blast_g, "flagger_t5_mean_failed": blast_t5,
            "met": blast_g is not None and blast_t5 is not None and blast_g <= blast_t5 / 8},
        "rolled_back_2pct": {"value": rb2, "goal": ">= 0.95", "runs": row("errors-2pct", "gantry").get("runs"),
                             "met": rb2 is not None and rb2 >= 0.95},
        "promoted_0.3pct": {"value": pr03, "goal": ">= 0.95", "runs": row("errors-0.3pct", "gantry").get("runs"),
                            "met": pr03 is not None and pr03 >= 0.95},
        "false_rollbacks_healthy": {"value": gh.get("false_rollbacks"), "goal": f"0 in >= {healthy_goal} runs",
                                    "runs": gh.get("runs"),
                                    "met": int(str(gh.get("runs") or 0)) >= healthy_goal
                                    and gh.get("false_rollbacks") == 0},
    }


def fmt(v: object, spec: str = ".1f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _stat(d: object) -> str:
    if not isinstance(d, dict) or not d.get("n"):
        return "-"
    return (f"{fmt(d['median'])} / {fmt(d['max'])} [{fmt(d['ci95_low'])}, {fmt(d['ci95_high'])}]")


def markdown(doc: dict[str, object]) -> str:
    rows = doc["rows"]
    assert isinstance(rows, list)
    load = doc["load_average"]
    assert isinstance(load, dict)
    lines = [
        "# Rollout safety: streaming sequential judge vs Flagger-style threshold analysis",
        "",
        f"Machine: {doc['machine']}. Date: {doc['date']}. Command: `{doc['command']}`.",
        f"Load average (1/5/15 min) at start {load['start']}, at end {load['end']}; per run median/max in the "
        "table. The machine is shared (2 cores, other jobs running).",
        f"Load {RATE:.0f} rps on loopback, steps {STEPS}, interval {doc['interval']}, real HAProxy + Prometheus "
        "(1 s scrapes) + demo app; the real rollout engine decides; judges interleaved run by run.",
        f"{doc['workers']} sandbox(es) side by side, each taking every n-th run of the interleaved plan; "
        f"{doc['completed_runs']} of {doc['planned_runs']} planned runs completed; wall {doc['wall_seconds']} s"
        + (f"; {doc['merged']} (run from the ends of lagging shards' lists, side by side)." if doc.get("merged")
           else "."),
        "",
        "Detect s and blast (failed canary requests per run): median / max [95% CI of the median].",
        "",
        "| scenario | judge | runs | rolled back | promoted | early | detect s | blast | restore ms (median / max) "
        "| slow canary req (>500 ms) | false rb | missed rb | load1 median / max |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['judge']} | {r['runs']} | {r['rolled_back']} | {r['promoted']} | "
            f"{r['early_rollbacks']} | {_stat(r['detect_s'])} | {_stat(r['blast_failed'])} | "
            f"{fmt(r['restore_ms_median'], '.0f')} / {fmt(r['restore_ms_max'], '.0f')} | "
            f"{fmt(r['slow_canary_mean'])} | {r['false_rollbacks']} | {r['missed_rollbacks']} | "
            f"{fmt(r['load1_median'], '.2f')} / {fmt(r['load1_max'], '.2f')} |")
    fl = doc["floor"]
    assert isinstance(fl, dict)
    lines += [
        "",
        f"Statistical floor (SPRT p0={fl['p0']:g}, p1={fl['p1']:g}, alpha={fl['alpha']}, beta={fl['beta']}, canary "
        f"at {fl['canary_rps']:.0f} rps on the first step): E[N|H0] = {fl['asn_h0_requests']:.0f} requests "
        f"({fl['asn_h0_s']:.1f} s), E[N|H1] = {fl['asn_h1_requests']:.0f} requests ({fl['asn_h1_s']:.1f} s); "
        f"at 20% errors ~{fl['n_at_20pct_requests']:.0f} requests ({fl['n_at_20pct_s']:.1f} s) plus a scrape "
        "and a look.",
        "",
        "Targets:",
        "",
        "| target | goal | value | met |",
        "|---|---|---|---|",
    ]
    tg = doc["targets"]
    assert isinstance(tg, dict)
    for name, tv in tg.items():
        lines.append(f"| {name} | {tv['goal']} | {fmt(tv['value'], '.3g')} | {'yes' if tv['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def make_plan(scenarios: list[str], judges: list[str], wanted: Callable[[str, str], int],
              rounds: int) -> list[tuple[str, str]]:
    """Interleaved: each (scenario, judge)'s runs are spread evenly over ``rounds`` rounds (40 healthy runs over
    10 rounds is 4 a round), so the judges share whatever load the machine has, and a run cut short by the
    time budget still has every judge and scenario in proportion."""
    plan: list[tuple[str, str]] = []
    for rnd in range(rounds):
        for s in scenarios:
            for j in judges:
                n = wanted(s, j)
                plan += [(s, j)] * sum(1 for i in range(n) if i * rounds // n == rnd)
    return plan


def run_shard(args: argparse.Namespace, plan: list[tuple[str, str]], shard: int, shards: int,
              runs_out: Path | None, t0: float) -> list[RunResult]:
    """Run this shard's part of the plan (every ``shards``-th run) on its own sandbox."""
    work = Path(tempfile.mkdtemp(prefix=f"gantry-bench-{shard}-"))
    (work / "stacks").mkdir()
    shutil.copyfile(ROOT / "stacks" / "Pulumi.local.yaml", work / "stacks" / "Pulumi.local.yaml")
    bench = Bench(work, args.interval)
    mine = [(i, item) for i, item in enumerate(plan, 1) if (i - 1) % shards == shard]
    if args.reverse:
        mine.reverse()
    results: list[RunResult] = []
    try:
        for i, (scenario, judge) in mine:
            if args.budget_minutes and time.time() - t0 > 60 * args.budget_minutes:
                print(f"[shard {shard}] time budget of {args.budget_minutes} min spent: stopping", flush=True)
                break
            r = bench.run(scenario, judge)
            results.append(r)
            if runs_out is not None:
                runs_out.write_text(json.dumps([asdict(x) for x in results]))
            print(f"[{i}/{len(plan)} {time.time() - t0:5.0f}s load {r.load1:.2f}] {scenario:16} {judge:10} "
                  f"{r.outcome:11} detect={fmt(r.detect_s)}s{' early' if r.early else ''} "
                  f"restore={fmt(r.restore_ms, '.0f')}ms blast={r.canary_failed}/{r.total_requests} "
                  f"({r.reason[:60]})", flush=True)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    return results


def merge(args: argparse.Namespace, plan: list[tuple[str, str]]) -> int:
    """Add runs from extra shard files (``--shard i/n --reverse``, started to help a lagging shard) to the
    results, and recompute the table and targets from all of them."""
    stem = "rollout_safety_quick" if args.quick else "rollout_safety"
    path = args.out / f"{stem}.json"
    doc = json.loads(path.read_text())
    fields = set(RunResult.__dataclass_fields__)
    results = [RunResult(**{k: v for k, v in d.items() if k in fields}) for d in doc["runs"]]
    added = 0
    for f in args.merge_runs:
        extra = [RunResult(**d) for d in json.loads(Path(f).read_text())]
        results += extra
        added += len(extra)
    rows = summarise(results)
    settings = load_stack("local", ROOT / "stacks").rollout
    doc.update(rows=rows, targets=targets(rows, args.healthy_runs if not args.quick else 40),
               runs=[asdict(r) | {"blast_share": r.blast_share} for r in results],
               completed_runs=len(results), planned_runs=len(plan),
               floor=floor(parse_duration(args.interval), settings),
               merged=f"{added} runs from {len(args.merge_runs)} reverse shard(s) added",
               load_average=doc["load_average"] | {"merge": [round(x, 2) for x in os.getloadavg()]})
    path.write_text(json.dumps(doc, indent=1))
    md = markdown(doc)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 healthy runs, 1 run per fault")
    parser.add_argument("--healthy-runs", type=int, default=40, help="healthy runs for the gantry judge")
    parser.add_argument("--low-error-runs", type=int, default=20,
                        help="0.3%%-error runs for the gantry judge (must promote; >= 95%% needs 19 of 20)")
    parser.add_argument("--baseline-healthy-runs", type=int, default=5,
                        help="healthy and 0.3%%-error runs per Flagger judge")
    parser.add_argument("--faulty-runs", type=int, default=10, help="runs per other scenario and judge")
    parser.add_argument("--interval", default="5s", help="analysis interval, the same for every judge")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--judges", default=",".join(JUDGES))
    parser.add_argument("--workers", type=int, default=1,
                        help="sandboxes run side by side, each taking every n-th run of the interleaved plan")
    parser.add_argument("--budget-minutes", type=float, default=0.0,
                        help="start no run after this many minutes (0: no limit); what ran is reported")
    parser.add_argument("--shard", default="", help=argparse.SUPPRESS)
    parser.add_argument("--runs-out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reverse", action="store_true",
                        help="with --shard: run the shard's part of the plan from its end (a helper for a lagging "
                             "shard; its runs are added with --merge-runs)")
    parser.add_argument("--merge-runs", type=Path, nargs="*", default=None,
                        help="add the runs in these shard files to the existing results and recompute everything")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.quick:
        args.healthy_runs, args.low_error_runs, args.baseline_healthy_runs, args.faulty_runs = 2, 1, 1, 1
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"--scenarios must be among {', '.join(SCENARIOS)}, but {sorted(unknown)} was given")
    judges = [j for j in args.judges.split(",") if j]
    if set(judges) - set(JUDGES):
        parser.error(f"--judges must be among {', '.join(JUDGES)}, but {args.judges!r} was given")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, but {args.workers} was given")

    def wanted(scenario: str, judge: str) -> int:
        if scenario in MUST_PROMOTE and judge != "gantry":
            return int(args.baseline_healthy_runs)
        if scenario == "healthy":
            return int(args.healthy_runs)
        if scenario == "errors-0.3pct":
            return int(args.low_error_runs)
        return int(args.faulty_runs)

    plan = make_plan(scenarios, judges, wanted, max(1, args.faulty_runs))
    t0 = time.time()
    if args.merge_runs is not None:
        return merge(args, plan)
    if args.shard:
        shard, shards = (int(x) for x in args.shard.split("/"))
        run_shard(args, plan, shard, shards, args.runs_out, t0)
        return 0
    load_start = [round(x, 2) for x in os.getloadavg()]
    results: list[RunResult] = []
    if args.workers == 1:
        results = run_shard(args, plan, 0, 1, None, t0)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="gantry-bench-shards-"))
        passthrough = [a for a in sys.argv[1:] if not a.startswith("--workers")]
        if "--workers" in sys.argv[1:]:
            k = sys.argv.index("--workers")
            passthrough = sys.argv[1:k] + sys.argv[k + 2:]
        procs = [subprocess.Popen([sys.executable, __file__, *passthrough, "--shard", f"{i}/{args.workers}",
                                   "--runs-out", str(tmp / f"shard-{i}.json")]) for i in range(args.workers)]
        for proc in procs:
            proc.wait()
        for i in range(args.workers):
            f = tmp / f"shard-{i}.json"
            if f.exists():
                results += [RunResult(**d) for d in json.loads(f.read_text())]
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summarise(results)
    settings = load_stack("local", ROOT / "stacks").rollout
    doc: dict[str, object] = {
        "benchmark": "rollout_safety",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, "
                   f"Python {platform.python_version()}",
        "command": "python " + " ".join(["bench/rollout_safety.py", *sys.argv[1:]]),
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "interval": args.interval, "rate_rps": RATE, "steps": STEPS, "quick": args.quick,
        "workers": args.workers, "planned_runs": len(plan), "completed_runs": len(results),
        "wall_seconds": round(time.time() - t0, 1),
        "floor": floor(parse_duration(args.interval), settings),
        "rows": rows, "targets": targets(rows, args.healthy_runs if not args.quick else 40),
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
