"""A synthetic journal for the KPI tests, written by the real engine with fake targets, traffic and clock.

Every duration in it follows from the plan and the target's costs, so the tests can state each metric's
exact value and say where it comes from. Timeline (T0 = the FakeClock's start, a Tuesday of ISO week
2023-W46; the plan is canary 10/50/100, interval 30 s, threshold 2, threshold judge on real gates):

week 2023-W46
  r1  prod/web     committed 1 h before; promoted                                     deploy 155 s
  r2  prod/web     a commit without a commit time; promoted                           deploy 155 s
  r3  prod/web     step 50% fails twice; rolled back (revert 40 s)                     MTTR 70 s
  r4  staging/web  step 50% fails twice; the revert raises: rollback failed
week 2023-W47 (T0 + 6 d)
  r5  prod/api     committed 2 h before; dies in the step-50% analysis, resumed 600 s later  deploy 755 s
  r6  prod/web     promoted; its step-50% analysis takes 155 s, during which ...       deploy 310 s
  r7  staging/api  ... a whole rollout of another service runs (overlap)               deploy 155 s
  r8  prod/web     `gantry rollback --to r6`: a fast-track revert (revert 25 s)

A healthy step costs set_weights 10 s + interval 30 s; prepare 20 s and promote 15 s: 20 + 3 x 40 + 15 = 155 s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fakes import FakeTarget

from components.spec import Strategy
from infra.rollout.analysis import ThresholdAnalysis
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine, Outcome
from infra.rollout.journal import SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.provenance import Provenance, Source
from infra.rollout.scheduler import canary_plan
from infra.rollout.seams import RolloutId, StackName, Track, TrafficCounts
from infra.settings.rollout import RolloutSettings

T0 = 1_700_000_000.0
DAY = 86_400.0
PLAN = canary_plan([10, 50, 100], interval=30.0, threshold=2)
COSTS = {"prepare": 20.0, "set_weights": 10.0, "promote": 15.0, "revert": 40.0}
STABLE_REQUESTS = 1000
"""Stable-version requests every analysis reads."""


class Crash(BaseException):
    """Stands in for the process dying (not an Exception, so nothing in the engine catches it)."""


class SlowTarget(FakeTarget):
    """A FakeTarget whose operations take time on the shared fake clock (a `pulumi up` is not instant)."""

    def __init__(self, clock: FakeClock, *, fail_always: Iterable[str] = ()) -> None:
        super().__init__(Strategy.CANARY, "app:1.0", fail_always=fail_always)
        self.clock = clock
        self.costs = dict(COSTS)

    def _call(self, name: str, *args: str | int) -> None:
        self.clock.advance(self.costs.get(name, 0.0))
        super()._call(name, *args)


@dataclass
class ScriptedTraffic:
    """Request and error counts per analysis: the n-th analysis reads ``canary_errors[n]`` of 200 canary
    requests and ``stable_errors[n]`` of 1000 stable ones (the last value repeats). ``during`` runs inside
    the n-th read, before it answers (a slow metrics backend, or the process dying there)."""

    canary_errors: Sequence[int] = (0,)
    stable_errors: Sequence[int] = (0,)
    during: Mapping[int, Callable[[], None]] = field(default_factory=dict)
    reads: int = 0

    def counts(self, track: Track, window_seconds: float) -> TrafficCounts:
        if track is Track.CANARY:
            self.reads += 1
            action = self.during.get(self.reads)
            if action is not None:
                action()
            errors = self.canary_errors[min(self.reads, len(self.canary_errors)) - 1]
            return TrafficCounts(200, errors, p95_ms=80.0)
        errors = self.stable_errors[min(self.reads, len(self.stable_errors)) - 1]
        return TrafficCounts(STABLE_REQUESTS, errors, p95_ms=80.0)


@dataclass
class Scenario:
    journal: SqliteJournal
    clock: FakeClock
    ids: dict[str, RolloutId]
    outcomes: dict[str, Outcome]
    starts: dict[str, float]


def build(tmp: Path) -> Scenario:
    db = tmp / ".gantry" / "journal.db"
    clock = FakeClock(T0)
    journal = SqliteJournal(db)
    targets = {("prod", "web"): SlowTarget(clock), ("prod", "api"): SlowTarget(clock),
               ("staging", "web"): SlowTarget(clock, fail_always=["revert"]), ("staging", "api"): SlowTarget(clock)}
    ids: dict[str, RolloutId] = {}
    outcomes: dict[str, Outcome] = {}
    starts: dict[str, float] = {}

    def engine(stack: str, service: str, traffic: ScriptedTraffic) -> Engine:
        return Engine(target=targets[(stack, service)], analysis=ThresholdAnalysis(RolloutSettings(), traffic),
                      journal=journal, lock=SqliteLock(db, clock, ttl=60.0), clock=clock, poll=30.0)

    def run(name: str, stack: str, service: str, traffic: ScriptedTraffic, *, committed_ago: float | None,
            commit: bool = True) -> None:
        starts[name] = clock.now()
        provenance = Provenance(commit=f"{len(ids) + 1:07x}" if commit else None,
                                committed_at=None if committed_ago is None else clock.now() - committed_ago,
                                source=Source.FLAG if commit else None)
        try:
            outcomes[name] = engine(stack, service, traffic).start(
                stack=StackName(stack), service=service, image=f"{service}:{name}", plan=PLAN, provenance=provenance)
        finally:
            ids[name] = next(r.id for r in journal.history(StackName(stack))
                             if r.created_at == starts[name] and r.service == service)

    run("r1", "prod", "web", ScriptedTraffic(), committed_ago=3600)
    clock.advance(T0 + 1000 - clock.now())
    run("r2", "prod", "web", ScriptedTraffic(), committed_ago=None)
    clock.advance(T0 + 2000 - clock.now())
    # Analyses 2 and 3 (step 50%, then its retry after the hold) see 20% canary errors; stable sees 3 each.
    run("r3", "prod", "web", ScriptedTraffic(canary_errors=(0, 40, 40), stable_errors=(0, 3, 3)), committed_ago=600)
    clock.advance(T0 + 3000 - clock.now())
    run("r4", "staging", "web", ScriptedTraffic(canary_errors=(0, 40, 40), stable_errors=(0, 2, 2)),
        committed_ago=1800)

    clock.advance(T0 + 6 * DAY - clock.now())

    def die() -> None:
        raise Crash

    with contextlib.suppress(Crash):
        run("r5", "prod", "api", ScriptedTraffic(during={2: die}), committed_ago=7200)
    clock.advance(600)  # the operator notices, then runs `gantry rollout resume` in a new process
    outcomes["r5"] = engine("prod", "api", ScriptedTraffic()).resume(ids["r5"])

    clock.advance(T0 + 6 * DAY + 2000 - clock.now())
    # r7 runs to its end inside r6's second analysis: the two rollouts overlap in time.
    run("r6", "prod", "web", ScriptedTraffic(during={2: lambda: run("r7", "staging", "api", ScriptedTraffic(),
                                                                    committed_ago=300)}),
        committed_ago=1200)

    clock.advance(1000)
    targets[("prod", "web")].costs["revert"] = 25.0
    starts["r8"] = clock.now()
    outcomes["r8"] = engine("prod", "web", ScriptedTraffic()).revert_to(ids["r6"])
    ids["r8"] = outcomes["r8"].rollout_id
    return Scenario(journal, clock, ids, outcomes, starts)
