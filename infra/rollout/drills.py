"""Crash drills: SIGKILL a rollout at a journal boundary, resume it, and check nothing was lost or left skewed.

Used by ``tests/rollout/test_resume_kill.py`` and ``bench/rollout_kill.py``. A forked child runs a real
engine on a SQLite journal and a ``JsonFileTarget`` and kills itself with SIGKILL just before or just
after its n-th journal append (every step boundary: intent, effect, applied, analysis, decision...).
The parent then resumes the rollout from the journal alone, as ``gantry rollout resume`` would, and
checks that the entries written before the kill are intact, the rollout ended, the journal replays to
the engine's final state and the target's live state matches the journal.

``GANTRY_DRILL_KILL_AT=before:N`` or ``after:N`` makes any gantry process kill itself the same way
(``kill_hook_from_env``), so drills can run the real CLI as a subprocess.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from components.spec import Strategy
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine, Outcome
from infra.rollout.fakes import JsonFileTarget
from infra.rollout.journal import AppendHook, EntryKind, SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.scheduler import Plan, bluegreen_plan, canary_plan, mismatches, replay
from infra.rollout.seams import (
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    Phase,
    RolloutId,
    StackName,
    Verdict,
)

ENV_KILL_AT = "GANTRY_DRILL_KILL_AT"


def kill_hook(when: str, n: int) -> AppendHook:
    """An append hook that SIGKILLs this process at ``when`` ("before"/"after") the n-th append."""

    def hook(moment: str, kind: EntryKind, count: int) -> None:
        if moment == when and count == n:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def kill_hook_from_env() -> AppendHook | None:
    spec = os.environ.get(ENV_KILL_AT, "")
    when, _, n = spec.partition(":")
    if when in ("before", "after") and n.isdigit():
        return kill_hook(when, int(n))
    return None


class StepAnalysis:
    """Deterministic across processes: fails on the listed steps, passes elsewhere."""

    def __init__(self, bad_steps: Iterable[int] = ()) -> None:
        self.bad = frozenset(bad_steps)

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        verdict = Verdict.FAIL if ctx.step_index in self.bad else Verdict.PASS
        return AnalysisResult(verdict, (CheckResult("error-rate", verdict, 0.2 if verdict is Verdict.FAIL else 0.0,
                                                    0.05),))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    strategy: Strategy
    bad_steps: frozenset[int]
    expected: Phase

    def plan(self) -> Plan:
        if self.strategy is Strategy.CANARY:
            return canary_plan([10, 25, 50, 100], interval=30.0, threshold=2)
        return bluegreen_plan(interval=30.0, post_promotion_window=60.0, threshold=1, scale_down_delay=30.0)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("canary-healthy", Strategy.CANARY, frozenset(), Phase.PROMOTED),
    Scenario("canary-bad-at-50", Strategy.CANARY, frozenset({2}), Phase.ROLLED_BACK),
    Scenario("bluegreen-healthy", Strategy.BLUEGREEN, frozenset(), Phase.PROMOTED),
    Scenario("bluegreen-bad-after-switch", Strategy.BLUEGREEN, frozenset({1}), Phase.ROLLED_BACK),
)


@dataclass(frozen=True, slots=True)
class DrillResult:
    scenario: str
    point: str
    killed: bool
    consistent: bool
    problems: tuple[str, ...]
    final_phase: Phase | None
    entries_at_kill: int
    entries_final: int


def _engine(workdir: Path, scenario: Scenario, on_append: AppendHook | None, pid: int | None = None) -> Engine:
    db = workdir / "journal.db"
    clock = FakeClock()
    target = JsonFileTarget(workdir / "target.json", scenario.strategy, "app:1.0")
    return Engine(target=target, analysis=StepAnalysis(scenario.bad_steps),
                  journal=SqliteJournal(db, on_append=on_append), lock=SqliteLock(db, clock, pid=pid), clock=clock,
                  poll=30.0)


def _start(engine: Engine, scenario: Scenario) -> Outcome:
    return engine.start(stack=StackName("drill"), service="web", image="app:2.0", plan=scenario.plan())


def reference_appends(workdir: Path, scenario: Scenario) -> int:
    """How many journal appends an uninterrupted run makes (the kill points are 1..that, before and after)."""
    workdir.mkdir(parents=True, exist_ok=True)
    engine = _engine(workdir, scenario, None)
    outcome = _start(engine, scenario)
    if outcome.phase is not scenario.expected:
        raise AssertionError(f"{scenario.name} ended {outcome.phase.value}, expected {scenario.expected.value}")
    return len(engine.journal.entries(outcome.rollout_id))


def run_point(workdir: Path, scenario: Scenario, when: str, n: int) -> DrillResult:
    """Fork a child that dies at (when, n); resume in this process; check the invariants."""
    workdir.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:  # the child: run until the kill point kills us
        try:
            _start(_engine(workdir, scenario, kill_hook(when, n)), scenario)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)  # reap it: a zombie still answers kill(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    point = f"{when}:{n}"
    journal = SqliteJournal(workdir / "journal.db")
    records = journal.history(StackName("drill"))
    problems: list[str] = []
    if not records:
        # Killed before the rollout was recorded: nothing may have been touched.
        journal.close()
        untouched = JsonFileTarget(workdir / "target.json", scenario.strategy, "app:1.0").current().stable_image
        ok = killed and n == 1 and when == "before" and untouched == "app:1.0"
        return DrillResult(scenario.name, point, killed, ok, () if ok else ("no rollout recorded",), None, 0, 0)
    rid = RolloutId(records[0].id)
    before = journal.entries(rid)
    expected_count = n if when == "after" else n - 1
    if killed and len(before) != expected_count:
        problems.append(f"{len(before)} entries survived the kill, {expected_count} were committed")
    journal.close()
    engine = _engine(workdir, scenario, None)
    try:
        outcome = engine.resume(rid)
    except Exception as exc:  # a drill reports, it does not crash
        return DrillResult(scenario.name, point, killed, False, (f"resume raised {exc!r}",), None, len(before), 0)
    after = engine.journal.entries(rid)
    if [(e.seq, e.kind, e.data) for e in after[:len(before)]] != [(e.seq, e.kind, e.data) for e in before]:
        problems.append("entries written before the kill changed or vanished")
    if not outcome.phase.terminal:
        problems.append(f"resume ended in {outcome.phase.value}")
    if replay(after) != outcome.state:
        problems.append("the journal does not replay to the engine's final state")
    live = engine.target.current()
    diff = mismatches(outcome.state, live)
    if diff:
        problems.append("target differs from the journal: " + "; ".join(diff))
    if outcome.phase is Phase.PROMOTED and scenario.expected is not Phase.PROMOTED:
        problems.append("a bad version was promoted")
    verified = [e for e in after if e.kind is EntryKind.VERIFIED]
    if len(verified) != 1 or not verified[0].data.get("ok"):
        problems.append(f"expected one successful verification, found {len(verified)}")
    return DrillResult(scenario.name, point, killed, not problems, tuple(problems), outcome.phase, len(before),
                       len(after))


def run_all(root: Path, scenarios: Iterable[Scenario] = SCENARIOS) -> list[DrillResult]:
    """Every kill point (before and after every append) of every scenario, each in a fresh directory."""
    results: list[DrillResult] = []
    for sc in scenarios:
        total = reference_appends(root / sc.name / "reference", sc)
        for n in range(1, total + 1):
            for when in ("before", "after"):
                results.append(run_point(root / sc.name / f"{when}-{n}", sc, when, n))
    return results
