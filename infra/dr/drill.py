"""``gantry dr drill --stack local``: a region outage under load in the sandbox, failed over and back, measured.

Called by ``gantry dr drill`` and ``bench/dr_drill.py``. Under an open-loop load (200 rps by default) on a
service's frontend it freezes the primary region (``sandbox fault --region primary --down``), lets the DR
engine detect it, fail over, verify and check replication lag, keeps the load on the standby for a while,
brings the primary back, fails back, and reports from what the load generator saw:

- time to detect: fault to the engine's confirmation that the primary is down;
- time to switch: fault to the traffic switch being applied (and detect to switch);
- RTO: fault to the start of the first 0.25 s bucket from which every bucket, until failback starts, has
  at least 99% successful requests (the buckets' width is the resolution);
- requests lost during the switch (until the switch is applied: requests sent just before the fault hang
  into it) and after it (switch to failback; goal 0), counted by when each request was sent; a request is
  lost when it got no answer below 500 within 1 s;
- the replication-lag check (in the sandbox a stand-in gauge, see ``infra.sandbox.demoapp``).

The engine is the one ``gantry dr failover|failback`` runs (journaled and locked); the times it journals are
mapped onto the load generator's clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.dr.engine import Observer, Outcome
from infra.errors import InputError
from infra.sandbox.loadgen import LoadGenerator, RequestRecord
from infra.sandbox.procs import SandboxError

BUCKET = 0.25
SUCCESS_GOAL = 0.99
SANDBOX_RTO_GOAL = 30.0
"""The sandbox's goal (the seed's limit is 5 min)."""


@dataclass(slots=True)
class DrillReport:
    """Everything the drill measured; times are seconds, relative to the fault unless named otherwise."""

    stack: str
    service: str
    rate_rps: float
    detect_s: float | None
    switch_s: float | None
    detect_to_switch_s: float | None
    rto_s: float | None
    rto_goal_s: float
    engine_rto_s: float | None
    """The RTO the engine journaled: fault to the standby verified (probes), as ``gantry dr failover`` records it."""
    requests: int
    lost_during_switch: int
    lost_after_switch: int
    lost_during_failback: int
    replication: dict[str, object] | None
    failover: dict[str, object]
    failback: dict[str, object] | None
    recovered: bool
    ok: bool
    timeline: list[dict[str, float]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    """Load-generator seconds of fault, detected, switched, failback, failback switched."""
    chart: str | None = None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def buckets(records: Sequence[RequestRecord], end: float, width: float = BUCKET) -> list[tuple[float, int, int]]:
    """(bucket start, requests, failed) for every bucket from 0 to ``end``."""
    n = int(end / width) + 1
    counts = [[0, 0] for _ in range(n)]
    for r in records:
        i = int(r.t / width)
        if 0 <= i < n:
            counts[i][0] += 1
            counts[i][1] += int(r.failed)
    return [(i * width, c[0], c[1]) for i, c in enumerate(counts)]


def recovered_at(series: Sequence[tuple[float, int, int]], fault: float, until: float,
                 goal: float = SUCCESS_GOAL) -> float | None:
    """Start of the first bucket at or after ``fault`` from which every bucket before ``until`` meets ``goal``.

    A bucket with no requests does not count as recovered: silence is not success.
    """
    found: float | None = None
    for start, n, failed in series:
        if start + BUCKET <= fault or start >= until:
            continue
        good = n > 0 and (n - failed) / n >= goal
        if good and found is None:
            found = max(start, fault)
        elif not good:
            found = None
    return found


def lost(records: Sequence[RequestRecord], start: float, end: float) -> int:
    return sum(1 for r in records if start <= r.t < end and r.failed)


def run(project: Path, stack: str = "local", *, rate: float = 200.0, settle: float = 3.0, hold: float = 5.0,
        chart_path: Path | None = None, observer: Observer | None = None,
        log: Callable[[str], None] | None = None) -> DrillReport:
    """Run the drill on a ``cloud: local`` stack; starts (and stops) a two-region sandbox when none is up."""
    from components.spec import Cloud
    from infra.dr import parts as dr_parts
    from infra.sandbox import lifecycle, regions
    from infra.sandbox.state import load, sandbox_dir

    say = log or (lambda _line: None)
    cfg, settings = dr_parts.dr_settings(project, stack)
    if cfg.cloud is not Cloud.LOCAL:
        raise InputError(f"--stack must be a cloud local stack for a drill (it freezes a sandbox region), but "
                         f"{stack} is {cfg.cloud.value}")
    st = load(sandbox_dir(project))
    started_here = False
    if st is None or not lifecycle.status(project).up:
        say("starting a two-region sandbox")
        st = lifecycle.up(project, stack, config_dir=dr_parts.config_dir(project), regions=2)
        started_here = True
    elif st.regions != 2:
        raise SandboxError("the sandbox has one region; stop it and start it with: gantry sandbox up --regions 2")
    built = dr_parts.build(project, stack, observer=observer)
    try:
        if built.engine.unfinished() is not None:
            raise SandboxError("an unfinished DR operation exists; finish it with `gantry dr failover|failback` first")
        if built.target.active() != "primary":
            raise SandboxError("traffic is on the standby; run `gantry dr failback --stack local` before a drill")
        service = settings.health_checks[0].name
        _wait_for_lag_series(project, settings, say)
        load_gen = LoadGenerator(st.frontend_url(service), rate_rps=rate, max_seconds=3600, max_requests=10**7,
                                 workers=64, timeout=1.0)
        offset = time.time() - time.monotonic()
        load_gen.start()

        def lg_t(epoch: float) -> float:
            return epoch - offset - load_gen.started_at

        try:
            time.sleep(settle)
            say("fault: primary region down")
            fault_at = time.time()
            regions.set_region_fault(project, "primary", True)
            failover = built.engine.failover(fault_at=fault_at)
            say(failover.message)
            time.sleep(hold)
            say("primary region back up")
            regions.set_region_fault(project, "primary", False)
            failback_at = time.time()
            failback: Outcome | None = built.engine.failback() if failover.result == "done" else None
            if failback is not None:
                say(failback.message)
            time.sleep(settle)
        finally:
            load_gen.stop()
            # Whatever happened above, the primary must not stay frozen.
            regions.set_region_fault(project, "primary", False)
        records = load_gen.records()
        end = max((r.t for r in records), default=0.0)
        marks = {"fault": lg_t(fault_at), "failback": lg_t(failback_at)}
        for name, key in (("detected", "confirm"), ("switched", "switch"), ("verified", "verify")):
            if key in failover.times:
                marks[name] = lg_t(failover.times[key])
        if failback is not None and "switch" in failback.times:
            marks["switched back"] = lg_t(failback.times["switch"])
        series = buckets(records, end)
        fault_t = marks["fault"]
        switch_t = marks.get("switched")
        rec = recovered_at(series, fault_t, marks["failback"])
        lost_after = lost(records, switch_t, marks["failback"]) if switch_t is not None else 0
        rto = None if rec is None else rec - fault_t
        report = DrillReport(
            stack=stack, service=service, rate_rps=rate,
            detect_s=_minus(marks.get("detected"), fault_t), switch_s=_minus(switch_t, fault_t),
            detect_to_switch_s=_minus(switch_t, marks.get("detected")), rto_s=rto, rto_goal_s=SANDBOX_RTO_GOAL,
            engine_rto_s=failover.rto_seconds, requests=len(records),
            # From the start: requests sent just before the fault hang into it and fail too.
            lost_during_switch=lost(records, 0.0, switch_t if switch_t is not None else end + 1),
            lost_after_switch=lost_after,
            lost_during_failback=lost(records, marks["failback"], end + 1),
            replication=dict(failover.replication) if failover.replication is not None else None,
            failover=dict(failover.as_json()), failback=dict(failback.as_json()) if failback else None,
            recovered=rec is not None,
            ok=(failover.result == "done" and failback is not None and failback.result == "done" and rto is not None
                and rto <= SANDBOX_RTO_GOAL and lost_after == 0),
            timeline=[{"t": s, "requests": n, "failed": f} for s, n, f in series], marks=marks,
        )
        if chart_path is not None:
            report.chart = str(chart(report, chart_path))
        return report
    finally:
        built.close()
        if started_here:
            lifecycle.down(project)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _wait_for_lag_series(project: Path, settings: object, say: Callable[[str], None], timeout: float = 15.0) -> None:
    """Wait until Prometheus has scraped the replication-lag series, so the check after failover has data."""
    import httpx

    from infra.dr.settings import DrSettings
    from infra.sandbox import prometheus
    from infra.sandbox.state import resolve_prometheus_url

    assert isinstance(settings, DrSettings)
    if settings.replication_lag is None:
        return
    url = resolve_prometheus_url(settings.replication_lag.url, project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if prometheus.instant(url, settings.replication_lag.query) is not None:
                return
        except (httpx.HTTPError, OSError, ValueError, KeyError):  # still starting: wait until the deadline
            pass
        time.sleep(0.25)
    say("warning: the replication-lag series is not scraped yet; the check will report no data")


def chart(report: DrillReport, path: Path) -> Path:
    """Success rate over time (per 0.25 s), with the fault, detection, switch and failback marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["t"] for p in report.timeline]
    ys = [100.0 * (p["requests"] - p["failed"]) / p["requests"] if p["requests"] else 0.0 for p in report.timeline]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(xs, ys, color="#1f77b4", linewidth=1.2, label="success rate (%)")
    colors = {"fault": "#d62728", "detected": "#ff7f0e", "switched": "#2ca02c", "verified": "#17becf",
              "failback": "#9467bd", "switched back": "#8c564b"}
    for name, t in sorted(report.marks.items(), key=lambda kv: kv[1]):
        ax.axvline(t, color=colors.get(name, "grey"), linestyle="--", linewidth=1, label=f"{name} ({t:.1f}s)")
    ax.axhline(99, color="grey", linewidth=0.6, linestyle=":")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("seconds since load started")
    ax.set_ylabel("successful requests (%)")
    rto = "n/a" if report.rto_s is None else f"{report.rto_s:.1f}s"
    ax.set_title(f"gantry dr drill ({report.stack}/{report.service}, {report.rate_rps:g} rps): RTO {rto}, "
                 f"lost after switch {report.lost_after_switch}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(report: DrillReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
