"""Every step of one rollout, rebuilt from its journal entries: weights, analyses, gates, holds, decisions, timings.

Pure (entries in, dataclasses out). Used by ``gantry rollout status --steps`` (text and ``--json``) and by the
rollout chart (``infra.rollout.chart``) that ``gantry rollout report`` and the demo draw.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infra.rollout.journal import Entry, EntryKind
from infra.rollout.seams import JSONValue

_CANARY_COUNTS = re.compile(r"(\d+)/(\d+) (?:canary errors|requests failed)")
_H1 = re.compile(r"H1 p=([0-9.]+)")


def direction(gate: str) -> str:
    """How a gate's value must stand against its limit to pass: ``≥`` for the Mann-Whitney p-value (small
    means slower), ``≤`` for every other gate (rates, latencies, restarts, the SPRT's log-likelihood ratio)."""
    return "≥" if gate == "latency-mann-whitney" else "≤"


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    verdict: str
    value: float | None
    limit: float | None
    direction: str
    detail: str


@dataclass(frozen=True, slots=True)
class Counts:
    requests: int
    errors: int

    @property
    def rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Analysis:
    at: float
    """Seconds since the rollout started."""
    verdict: str
    early: bool
    window: float
    gates: tuple[Gate, ...]
    canary: Counts | None
    stable: Counts | None
    error_limit: float | None
    """The error rate the judge fails a canary at (the threshold gate's limit, or the SPRT's H1)."""


@dataclass(slots=True)
class Step:
    index: int
    label: str
    weight: int
    applied_at: float | None = None
    analyses: list[Analysis] = field(default_factory=list)
    holds: int = 0
    decision: str | None = None
    reason: str = ""
    decided_at: float | None = None
    hooks: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.applied_at is None or self.decided_at is None:
            return None
        return self.decided_at - self.applied_at


@dataclass(slots=True)
class Story:
    """A rollout as the journal tells it; times are seconds since its STARTED entry."""

    started_at: float
    strategy: str
    steps: list[Step]
    phase: str = ""
    reason: str = ""
    ended_at: float | None = None
    rollback_decided_at: float | None = None
    reverted_at: float | None = None
    promoted_at: float | None = None
    weights: list[tuple[float, int]] = field(default_factory=list)
    """(time, the new version's share of traffic in %), each time it changed."""

    @property
    def analyses(self) -> list[Analysis]:
        return [a for s in self.steps for a in s.analyses]

    @property
    def first_traffic_at(self) -> float | None:
        return next((t for t, w in self.weights if w > 0), None)

    @property
    def detection_seconds(self) -> float | None:
        """From the new version's first traffic to the first failed analysis (None if none failed)."""
        first_fail = next((a.at for a in self.analyses if a.verdict == "fail"), None)
        start = self.first_traffic_at
        if first_fail is None:
            return None
        return first_fail - (start if start is not None else 0.0)

    @property
    def failed_canary_requests(self) -> int:
        """Failed requests the canary served, as the judge counted them (counts are cumulative within an
        analysis window, so each step's largest count is taken and the steps are added)."""
        return sum(max((a.canary.errors for a in s.analyses if a.canary), default=0) for s in self.steps)


def _num(v: JSONValue) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _counts(v: JSONValue) -> Counts | None:
    if not isinstance(v, Mapping):
        return None
    requests, errors = _num(v.get("requests")), _num(v.get("errors"))
    return None if requests is None else Counts(int(requests), int(errors or 0))


def _analysis(e: Entry, t0: float) -> Analysis:
    raw = e.data.get("checks")
    gates: list[Gate] = []
    for c in raw if isinstance(raw, list) else []:
        if isinstance(c, Mapping):
            name = str(c.get("name", ""))
            gates.append(Gate(name, str(c.get("verdict", "")), _num(c.get("value")), _num(c.get("limit")),
                              direction(name), str(c.get("detail", ""))))
    traffic = e.data.get("traffic")
    canary = _counts(traffic.get("canary")) if isinstance(traffic, Mapping) else None
    stable = _counts(traffic.get("baseline")) if isinstance(traffic, Mapping) else None
    limit: float | None = None
    for g in gates:
        counted = _CANARY_COUNTS.search(g.detail)
        if canary is None and counted and g.name.startswith("error-rate"):
            # An early failed look journals its gate only: its detail carries the canary's counts.
            canary = Counts(int(counted.group(2)), int(counted.group(1)))
        if g.name == "error-rate" and g.limit is not None:
            limit = g.limit
        h1 = _H1.search(g.detail)
        if g.name == "error-rate-sprt" and h1:
            limit = float(h1.group(1))
    return Analysis(e.at - t0, str(e.data.get("verdict", "")), bool(e.data.get("early")),
                    float(_num(e.data.get("window")) or 0.0), tuple(gates), canary, stable, limit)


def story(entries: Sequence[Entry]) -> Story:
    """Rebuild the steps of one rollout from its entries (in journal order)."""
    if not entries or entries[0].kind is not EntryKind.STARTED:
        raise ValueError("a rollout's entries must begin with its started entry")
    first = entries[0]
    t0 = first.at
    plan = first.data.get("plan")
    plan_steps = plan.get("steps") if isinstance(plan, Mapping) else None
    steps = [Step(i, str(ps.get("label", f"step {i + 1}")), int(_num(ps.get("weight")) or 0))
             for i, ps in enumerate(plan_steps if isinstance(plan_steps, list) else []) if isinstance(ps, Mapping)]
    strategy = str(plan.get("strategy", "")) if isinstance(plan, Mapping) else ""
    s = Story(started_at=t0, strategy=strategy, steps=steps, weights=[(0.0, 0)])
    current = 0
    for e in entries[1:]:
        t = e.at - t0
        d = e.data
        if e.kind is EntryKind.APPLIED:
            action = str(d.get("action", ""))
            if "step" in d and isinstance(d["step"], int) and d["step"] < len(steps):
                current = int(d["step"])
                steps[current].applied_at = t
                weight = steps[current].weight if action != "observe" else 0
                s.weights.append((t, int(_num(d.get("weight")) or weight)))
            elif action == "revert":
                s.reverted_at = t
                s.weights.append((t, 0))
            elif action == "promote":
                s.promoted_at = t
                s.weights.append((t, 100))
        elif e.kind is EntryKind.ANALYSIS:
            step = d.get("step")
            current = int(step) if isinstance(step, int) and step < len(steps) else current
            if steps:
                steps[current].analyses.append(_analysis(e, t0))
        elif e.kind is EntryKind.HOOK:
            results = d.get("results")
            for r in results if isinstance(results, list) else []:
                if isinstance(r, Mapping) and steps:
                    steps[current].hooks.append(f"{d.get('phase')} hook {r.get('name')}: "
                                                f"{'ok' if r.get('ok') else 'FAILED'} ({r.get('detail', '')})")
        elif e.kind is EntryKind.DECISION and steps:
            step = d.get("step")
            at = int(step) if isinstance(step, int) and step < len(steps) else current
            decision = str(d.get("decision", ""))
            if decision == "hold":
                steps[at].holds += 1
            steps[at].decision, steps[at].reason, steps[at].decided_at = decision, str(d.get("reason", "")), t
            if decision == "rollback" and s.rollback_decided_at is None:
                s.rollback_decided_at = t
        elif e.kind is EntryKind.PHASE:
            s.phase, s.reason, s.ended_at = str(d.get("phase", "")), str(d.get("reason", "")), t
    return s


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def lines(s: Story) -> list[str]:
    """The steps as plain text, one fact per line: what ``gantry rollout status --steps`` prints."""
    out: list[str] = []
    for step in s.steps:
        applied = "not applied" if step.applied_at is None else f"applied at +{step.applied_at:.1f}s"
        took = f", decided after {step.seconds:.1f}s" if step.seconds is not None else ""
        out.append(f"step {step.index + 1}/{len(s.steps)}  {step.label}  weight {step.weight}%  {applied}{took}  "
                   f"holds {step.holds}")
        for hook in step.hooks:
            out.append(f"  {hook}")
        for n, a in enumerate(step.analyses, 1):
            traffic = []
            if a.canary:
                traffic.append(f"canary {a.canary.errors}/{a.canary.requests} failed")
            if a.stable:
                traffic.append(f"stable {a.stable.errors}/{a.stable.requests} failed")
            kind = "look (early)" if a.early else "analysis"
            out.append(f"  {kind} {n} at +{a.at:.1f}s over {a.window:.1f}s: {a.verdict}"
                       + (f"  ({', '.join(traffic)})" if traffic else ""))
            for g in a.gates:
                limit = "" if g.limit is None else f" {g.direction} {_fmt(g.limit)}"
                out.append(f"    {g.name}: {_fmt(g.value)}{limit}  {g.verdict}  {g.detail}")
        if step.decision:
            out.append(f"  decision at +{step.decided_at or 0.0:.1f}s: {step.decision}: {step.reason}")
    if s.reverted_at is not None:
        out.append(f"rolled back at +{s.reverted_at:.1f}s (stable serving 100%)")
    if s.promoted_at is not None:
        out.append(f"promoted at +{s.promoted_at:.1f}s")
    if s.ended_at is not None:
        out.append(f"ended at +{s.ended_at:.1f}s: {s.phase}" + (f": {s.reason}" if s.reason else ""))
    return out


def as_json(s: Story) -> dict[str, object]:
    """The steps for ``--json``."""
    def analysis(a: Analysis) -> dict[str, object]:
        return {"at": a.at, "verdict": a.verdict, "early": a.early, "window": a.window,
                "canary": None if a.canary is None else {"requests": a.canary.requests, "errors": a.canary.errors},
                "stable": None if a.stable is None else {"requests": a.stable.requests, "errors": a.stable.errors},
                "gates": [{"name": g.name, "verdict": g.verdict, "value": g.value, "limit": g.limit,
                           "direction": g.direction, "detail": g.detail} for g in a.gates]}
    return {"steps": [{"step": st.index + 1, "label": st.label, "weight": st.weight, "applied_at": st.applied_at,
                       "decided_at": st.decided_at, "seconds": st.seconds, "holds": st.holds,
                       "decision": st.decision, "reason": st.reason, "hooks": st.hooks,
                       "analyses": [analysis(a) for a in st.analyses]} for st in s.steps],
            "rolled_back_at": s.reverted_at, "promoted_at": s.promoted_at, "ended_at": s.ended_at,
            "detection_seconds": s.detection_seconds, "failed_canary_requests": s.failed_canary_requests}
