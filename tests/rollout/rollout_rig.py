"""Builders for rollout engine tests: a rig of engine + fakes + SQLite journal + lease on a temp directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fakes import FakeAnalysis, FakeTarget, RecordingNotifier

from components.spec import Strategy
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine, Outcome
from infra.rollout.journal import Entry, EntryKind, SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.scheduler import Plan, bluegreen_plan, canary_plan
from infra.rollout.seams import Analysis, Hook, HookPhase, RolloutId, StackName

STACK = StackName("dev")


@dataclass
class Rig:
    engine: Engine
    target: FakeTarget
    journal: SqliteJournal
    lock: SqliteLock
    clock: FakeClock
    notifier: RecordingNotifier
    plan: Plan

    def start(self, image: str = "app:2.0", *, service: str = "web", force: bool = False) -> Outcome:
        return self.engine.start(stack=STACK, service=service, image=image, plan=self.plan, force=force)

    def entries(self, rid: str) -> list[Entry]:
        return self.journal.entries(RolloutId(rid))

    def kinds(self, rid: str) -> list[str]:
        return [e.kind.value for e in self.entries(rid)]

    def of(self, rid: str, kind: EntryKind) -> list[Entry]:
        return [e for e in self.entries(rid) if e.kind is kind]


def make_plan(strategy: Strategy = Strategy.CANARY, *, weights: Sequence[int] = (10, 25, 50, 100),
              threshold: int = 1, interval: float = 30.0, max_holds: int = 3,
              hook_phases: Sequence[HookPhase] = ()) -> Plan:
    if strategy is Strategy.CANARY:
        return canary_plan(list(weights), interval=interval, threshold=threshold, max_holds=max_holds,
                           hook_phases=hook_phases)
    return bluegreen_plan(interval=interval, post_promotion_window=60.0, threshold=threshold, scale_down_delay=30.0,
                          max_holds=max_holds, hook_phases=hook_phases)


def make_rig(tmp: Path, *, strategy: Strategy = Strategy.CANARY, analysis: Analysis | None = None,
             target: FakeTarget | None = None, hooks: Sequence[Hook] = (), plan: Plan | None = None,
             threshold: int = 1, weights: Sequence[int] = (10, 25, 50, 100), clock: FakeClock | None = None,
             host: str | None = None, pid: int | None = None, ttl: float = 60.0, poll: float = 30.0,
             journal: SqliteJournal | None = None) -> Rig:
    db = tmp / ".gantry" / "journal.db"
    clock = clock or FakeClock()
    target = target or FakeTarget(strategy, "app:1.0")
    journal = journal or SqliteJournal(db)
    lock = SqliteLock(db, clock, ttl=ttl, host=host, pid=pid)
    notifier = RecordingNotifier()
    plan = plan or make_plan(strategy, weights=weights, threshold=threshold,
                             hook_phases=sorted({h.phase for h in hooks}))
    engine = Engine(target=target, analysis=analysis or FakeAnalysis(), journal=journal, lock=lock, clock=clock,
                    hooks=hooks, notifier=notifier, poll=poll)
    return Rig(engine, target, journal, lock, clock, notifier, plan)
