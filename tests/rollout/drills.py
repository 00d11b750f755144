"""Crash drills: SIGKILL a rollout at a journal boundary, resume it, and check nothing was lost or left skewed.

Used by ``tests/rollout/test_resume_kill.py`` and ``bench/rollout_kill.py``. A forked child runs a real
engine on a SQLite journal and a ``JsonFileTarget`` and kills itself with SIGKILL just before or just
after its n-th journal append (every step boundary: intent, effect, applied, analysis, decision...).
The parent then resumes the rollout from the journal alone, as ``gantry rollout resume`` would, and
checks that the entries written before the kill are intact, the rollout ended, the journal replays to
the engine's final state and the target's live state matches the journal.

``state=`` runs the same boundary drill on a shared backend (``infra.rollout.state``, e.g. DynamoDB on a
moto server): each drill directory gets its own namespace in the table, the child and the parent their
own clients, and the resume takes over the dead child's lease (same runner, dead pid) as on SQLite.

``GANTRY_DRILL_KILL_AT=before:N`` or ``after:N`` makes a gantry process started through the test-side
launcher ``drill_cli.py`` kill itself the same way (``kill_hook_from_env``), so drills can run the real
CLI as a subprocess; the installed ``gantry`` never reads it.

The in-operation drills go inside the target: ``infra.rollout.faults`` names a point after every single
effect of every target operation. A reference run traces the points it passes; then, for each point,
the rollout is started again with that point armed, dies there by SIGKILL, is resumed, and what users
see is checked: ``SandboxDrill`` runs the real ``gantry`` CLI against a real sandbox (HaproxyTarget),
``run_engine_point`` forks an engine over any target factory (PulumiStackTarget on the fake workspace).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from fakes import JsonFileTarget

from components.spec import Strategy
from infra.rollout import faults
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine, Outcome
from infra.rollout.entries import Verified, of, parse_all, read
from infra.rollout.journal import AppendHook, EntryKind, Journal, SqliteJournal, StateJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.scheduler import Plan, bluegreen_plan, canary_plan, expected_traffic, mismatches, replay
from infra.rollout.seams import (
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    Phase,
    RolloutId,
    ServingCheck,
    StackName,
    Target,
    TrafficState,
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


def drill_journal(workdir: Path, state: str = "sqlite", on_append: AppendHook | None = None) -> StateJournal:
    """The journal of one drill directory: ``journal.db`` in it, or its own namespace of a shared backend."""
    if state == "sqlite":
        return SqliteJournal(workdir / "journal.db", on_append=on_append)
    import hashlib

    from infra.rollout.state import open_state

    namespace = "drill-" + hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:16]
    return open_state(f"{state}&namespace={namespace}", workdir, on_append=on_append)


def _engine(workdir: Path, scenario: Scenario, on_append: AppendHook | None, pid: int | None = None,
            state: str = "sqlite") -> Engine:
    db = workdir / "journal.db"
    clock = FakeClock()
    target = JsonFileTarget(workdir / "target.json", scenario.strategy, "app:1.0")
    journal = drill_journal(workdir, state, on_append)
    lock = SqliteLock(db, clock, pid=pid) if state == "sqlite" else journal.lease_lock(clock, pid=pid)
    return Engine(target=target, analysis=StepAnalysis(scenario.bad_steps), journal=journal, lock=lock, clock=clock,
                  poll=30.0)


def _start(engine: Engine, scenario: Scenario) -> Outcome:
    return engine.start(stack=StackName("drill"), service="web", image="app:2.0", plan=scenario.plan())


def reference_appends(workdir: Path, scenario: Scenario, state: str = "sqlite") -> int:
    """How many journal appends an uninterrupted run makes (the kill points are 1..that, before and after)."""
    workdir.mkdir(parents=True, exist_ok=True)
    engine = _engine(workdir, scenario, None, state=state)
    outcome = _start(engine, scenario)
    if outcome.phase is not scenario.expected:
        raise AssertionError(f"{scenario.name} ended {outcome.phase.value}, expected {scenario.expected.value}")
    return len(engine.journal.entries(outcome.rollout_id))


def run_point(workdir: Path, scenario: Scenario, when: str, n: int, state: str = "sqlite") -> DrillResult:
    """Fork a child that dies at (when, n); resume in this process; check the invariants."""
    workdir.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:  # the child: run until the kill point kills us
        try:
            _start(_engine(workdir, scenario, kill_hook(when, n), state=state), scenario)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)  # reap it: a zombie still answers kill(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    point = f"{when}:{n}"
    journal = drill_journal(workdir, state)
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
    engine = _engine(workdir, scenario, None, state=state)
    try:
        outcome = engine.resume(rid)
    except Exception as exc:  # a drill reports, it does not crash
        return DrillResult(scenario.name, point, killed, False, (f"resume raised {exc!r}",), None, len(before), 0)
    after = engine.journal.entries(rid)
    if [(e.seq, e.kind, e.data) for e in after[:len(before)]] != [(e.seq, e.kind, e.data) for e in before]:
        problems.append("entries written before the kill changed or vanished")
    if not outcome.phase.terminal:
        problems.append(f"resume ended in {outcome.phase.value}")
    if replay(parse_all(after)) != outcome.state:
        problems.append("the journal does not replay to the engine's final state")
    live = engine.target.current()
    diff = mismatches(outcome.state, live)
    if diff:
        problems.append("target differs from the journal: " + "; ".join(diff))
    if outcome.phase is Phase.PROMOTED and scenario.expected is not Phase.PROMOTED:
        problems.append("a bad version was promoted")
    verified = of(parse_all(after), Verified)
    if len(verified) != 1 or not verified[0].ok:
        problems.append(f"expected one successful verification, found {len(verified)}")
    return DrillResult(scenario.name, point, killed, not problems, tuple(problems), outcome.phase, len(before),
                       len(after))


def run_all(root: Path, scenarios: Iterable[Scenario] = SCENARIOS, state: str = "sqlite") -> list[DrillResult]:
    """Every kill point (before and after every append) of every scenario, each in a fresh directory."""
    results: list[DrillResult] = []
    for sc in scenarios:
        total = reference_appends(root / sc.name / "reference", sc, state)
        for n in range(1, total + 1):
            for when in ("before", "after"):
                results.append(run_point(root / sc.name / f"{when}-{n}", sc, when, n, state))
    return results


# --------------------------------------------------------------------------- in-operation drills


@dataclass(frozen=True, slots=True)
class PointResult:
    """One kill point inside a target operation: did resume end serving and consistent with the journal?"""

    target: str
    scenario: str
    point: str
    killed: bool
    consistent: bool
    problems: tuple[str, ...]
    final_phase: str | None
    seconds: float = 0.0


def numbered(names: Iterable[str]) -> list[str]:
    """Trace lines -> kill specs: the n-th passage of a point is ``name#n``."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        name = name.strip()
        if name:
            seen[name] = seen.get(name, 0) + 1
            out.append(f"{name}#{seen[name]}")
    return out


def _read_trace(path: Path) -> list[str]:
    return numbered(path.read_text().splitlines()) if path.exists() else []


def journal_view(journal: Journal, rid: RolloutId) -> tuple[Phase, list[str], TrafficState | None]:
    """The rollout's phase, its end check's mismatches, and the traffic the journal says must serve now."""
    entries = read(journal, rid)
    state = replay(entries)
    verified = of(entries, Verified)
    problems: list[str] = []
    if len(verified) != 1:
        problems.append(f"expected one end check in the journal, found {len(verified)}")
    elif not verified[0].ok:
        problems.append(f"the end check failed: {list(verified[0].mismatches)}")
    exp = expected_traffic(state)
    if exp.stable_image is None:
        return state.phase, problems, None
    return state.phase, problems, TrafficState(
        strategy=state.plan.strategy, stable_image=exp.stable_image,
        canary_weight=exp.canary_weight or 0, active_color=exp.active_color)


def user_check(target: Target, journal: Journal, rid: RolloutId) -> tuple[Phase, list[str]]:
    """The drill's own check after resume, independent of what resume reported: journal, target, users."""
    phase, problems, expected = journal_view(journal, rid)
    state = replay(read(journal, rid))
    if not phase.terminal:
        problems.append(f"resume ended in {phase.value}")
    live = target.current()
    problems += mismatches(state, live)
    if expected is not None and isinstance(target, ServingCheck):
        problems += target.verify_serving(live if live.stable_image == expected.stable_image else expected)
    return phase, problems


# ---- the real CLI against a real sandbox (HaproxyTarget)

DRILL_STACK = """config:
  gantry:cloud: local
  gantry:environment: local
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "demo:v1", strategy: canary, canaryWeight: 0}}
    api: {{namespace: api, image: "demo:v1", strategy: bluegreen, activeColor: blue}}
  gantry:rollout:
    steps: [50, 100]
    interval: 0s
    threshold: 1
    judge: threshold
    target: haproxy
    postPromotionWindow: 0s
    scaleDownDelay: 0s
    metrics: {{provider: command}}
    gates: [{{name: drill, expr: "echo {value}", max: 0.5}}]
"""
"""Two drill stacks over one sandbox: ``local`` passes every analysis (gate 0), ``bad`` fails them (gate 1)."""


@dataclass(frozen=True, slots=True)
class SandboxScenario:
    name: str
    stack: str
    service: str
    strategy: Strategy
    expected: Phase


SANDBOX_SCENARIOS: tuple[SandboxScenario, ...] = (
    SandboxScenario("canary-healthy", "local", "web", Strategy.CANARY, Phase.PROMOTED),
    SandboxScenario("canary-bad", "bad", "web", Strategy.CANARY, Phase.ROLLED_BACK),
    SandboxScenario("bluegreen-healthy", "local", "api", Strategy.BLUEGREEN, Phase.PROMOTED),
    SandboxScenario("bluegreen-bad", "bad", "api", Strategy.BLUEGREEN, Phase.ROLLED_BACK),
)


@dataclass
class SandboxDrill:
    """Kills the real ``gantry rollout start`` at a point inside a HaproxyTarget operation, then resumes it."""

    project: Path
    python: str = sys.executable
    timeout: float = 120.0
    runs: int = 0
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def setup(self) -> None:
        from infra.sandbox import lifecycle

        stacks = self.project / "stacks"
        stacks.mkdir(parents=True, exist_ok=True)
        (stacks / "Pulumi.local.yaml").write_text(DRILL_STACK.format(value=0))
        (stacks / "Pulumi.bad.yaml").write_text(DRILL_STACK.format(value=1))
        lifecycle.up(self.project, "local")

    def teardown(self) -> None:
        from infra.sandbox import lifecycle

        lifecycle.down(self.project)

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in (faults.ENV_KILL_POINT, faults.ENV_TRACE)}
        env.update(self.extra_env)
        env.update(extra)
        return env

    def gantry(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        launcher = str(Path(__file__).resolve().parent / "drill_cli.py")
        return subprocess.run([self.python, launcher, *args], cwd=self.project, env=self._env(**env),
                              capture_output=True, text=True, timeout=self.timeout, check=False)

    def _image(self) -> str:
        self.runs += 1
        return f"demo:d{os.getpid()}x{self.runs}"

    def _start(self, sc: SandboxScenario, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
        res = self.gantry("rollout", "start", "--stack", sc.stack, "--service", sc.service, "--image",
                          self._image(), "--json", **env)
        rid = ""
        for line in res.stdout.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            rid = str(doc.get("rollout") or rid)
        return res, rid

    def reference(self, sc: SandboxScenario, trace: Path) -> list[str]:
        """An uninterrupted run that traces every point it passes; it must end as the scenario expects."""
        trace.unlink(missing_ok=True)
        res, _ = self._start(sc, **{faults.ENV_TRACE: str(trace)})
        outcome = _outcome_line(res.stdout)
        if outcome.get("phase") != sc.expected.value or not outcome.get("verified"):
            raise AssertionError(f"reference run of {sc.name} ended {outcome}: {res.stderr[-800:]}")
        if sc.strategy is Strategy.BLUEGREEN and sc.expected is Phase.PROMOTED:
            # A promotion swapped the colors, and the points name them: swap back, so the killed runs
            # (which all roll back) prepare the same color the reference run traced.
            again = _outcome_line(self._start(sc)[0].stdout)
            if again.get("phase") != Phase.PROMOTED.value:
                raise AssertionError(f"swapping the colors back ended {again}")
        return _read_trace(trace)

    def run_point(self, sc: SandboxScenario, spec: str) -> PointResult:
        from infra.rollout.journal import journal_path
        from infra.sandbox.target import HaproxyTarget

        t = time.perf_counter()
        res, rid = self._start(sc, **{faults.ENV_KILL_POINT: spec})
        killed = res.returncode == -signal.SIGKILL
        problems: list[str] = []
        if not killed:
            problems.append(f"the point was never reached (exit {res.returncode})")
        if not rid:
            return PointResult("haproxy", sc.name, spec, killed, False, ("no rollout id printed",), None,
                               time.perf_counter() - t)
        resumed = self.gantry("rollout", "resume", rid, "--json")
        outcome = _outcome_line(resumed.stdout)
        if not outcome.get("verified"):
            problems.append(f"resume reported {outcome or resumed.stderr[-400:]}")
        journal = SqliteJournal(journal_path(self.project))
        try:
            phase, found = user_check(HaproxyTarget(self.project, None, sc.service), journal, RolloutId(rid))
        finally:
            journal.close()
        problems += found
        want = Phase.ROLLED_BACK if killed else sc.expected
        if phase is not want:
            problems.append(f"ended {phase.value}, expected {want.value}")
        problems += orphans(self.project)
        return PointResult("haproxy", sc.name, spec, killed, not problems, tuple(problems), phase.value,
                           time.perf_counter() - t)


def _outcome_line(stdout: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for line in stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event") == "outcome":
            found = doc
    return found


def orphans(project: Path) -> list[str]:
    """Demo processes of this sandbox that no slot of any service holds (what D7 left behind)."""
    from infra.sandbox import procs
    from infra.sandbox.state import load, sandbox_dir

    directory = sandbox_dir(project)
    st = load(directory)
    if st is None:
        return ["the sandbox state file is gone"]
    held = {s.pid for svc in st.services.values() for s in svc.slots.values() if s is not None}

    def parent(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    # A slot holds the demo's supervisor; the demo itself is the supervisor's child.
    stray = [pid for pid in procs.tagged(st.marker, "-m", "infra.sandbox.demoapp")
             if pid not in held and parent(pid) not in held]
    return [f"orphan demo processes {sorted(stray)}"] if stray else []


def run_sandbox_drill(drill: SandboxDrill, scenarios: Sequence[SandboxScenario] = SANDBOX_SCENARIOS,
                      dedupe: bool = False, on_result: Callable[[PointResult], None] | None = None
                      ) -> list[PointResult]:
    """Every traced point of every scenario. ``dedupe`` tries a point name once per strategy (the
    points of ``prepare`` are the same code in both canary scenarios), for a shorter CI run."""
    results: list[PointResult] = []
    tried: set[str] = set()
    for sc in scenarios:
        points = drill.reference(sc, drill.project / f"trace-{sc.name}.txt")
        for spec in points:
            if dedupe and spec in tried:
                continue
            tried.add(spec)
            r = drill.run_point(sc, spec)
            results.append(r)
            if on_result is not None:
                on_result(r)
    return results


# ---- forked engines over any target factory (PulumiStackTarget on the fake workspace)

TargetFactory = Callable[[Strategy], Target]


def _op_engine(workdir: Path, scenario: Scenario, target: Target) -> Engine:
    db = workdir / "journal.db"
    clock = FakeClock()
    return Engine(target=target, analysis=StepAnalysis(scenario.bad_steps), journal=SqliteJournal(db),
                  lock=SqliteLock(db, clock), clock=clock, poll=30.0)


def _fork_start(workdir: Path, scenario: Scenario, make_target: TargetFactory, env: Mapping[str, str]) -> bool:
    """Run ``start`` in a forked child with ``env`` set; True if the child died by SIGKILL."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.environ.update(env)
            faults.reset()
            engine = _op_engine(workdir, scenario, make_target(scenario.strategy))
            engine.start(stack=StackName("drill"), service="web", image="app:2.0", plan=scenario.plan())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def engine_reference(workdir: Path, scenario: Scenario, make_target: TargetFactory) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    trace = workdir / "trace.txt"
    _fork_start(workdir, scenario, make_target, {faults.ENV_TRACE: str(trace)})
    journal = SqliteJournal(workdir / "journal.db")
    try:
        records = journal.history(StackName("drill"))
        phase, problems, _ = journal_view(journal, RolloutId(records[0].id)) if records else (None, ["none"], None)
    finally:
        journal.close()
    if phase is not scenario.expected or problems:
        raise AssertionError(f"reference run of {scenario.name} ended {phase}: {problems}")
    return _read_trace(trace)


def run_engine_point(workdir: Path, scenario: Scenario, make_target: TargetFactory, spec: str,
                     target_name: str) -> PointResult:
    """Fork an engine that dies at ``spec``, resume it here on a fresh target, and check what serves."""
    t = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    killed = _fork_start(workdir, scenario, make_target, {faults.ENV_KILL_POINT: spec})
    problems: list[str] = [] if killed else ["the point was never reached"]
    journal = SqliteJournal(workdir / "journal.db")
    records = journal.history(StackName("drill"))
    journal.close()
    if not records:
        return PointResult(target_name, scenario.name, spec, killed, False, ("no rollout recorded",), None)
    rid = RolloutId(records[0].id)
    target = make_target(scenario.strategy)
    engine = _op_engine(workdir, scenario, target)
    try:
        outcome = engine.resume(rid)
        if not outcome.verified:
            problems.append(f"resume's end check failed: {list(outcome.mismatches)}")
        phase, found = user_check(target, engine.journal, rid)
    except Exception as exc:  # a drill reports, it does not crash
        return PointResult(target_name, scenario.name, spec, killed, False, (f"resume raised {exc!r}",), None)
    finally:
        engine.journal.close()
    problems += found
    want = Phase.ROLLED_BACK if killed else scenario.expected
    if phase is not want:
        problems.append(f"ended {phase.value}, expected {want.value}")
    return PointResult(target_name, scenario.name, spec, killed, not problems, tuple(problems), phase.value,
                       time.perf_counter() - t)


def run_engine_drill(root: Path, make_target: Callable[[Path, Strategy], Target], target_name: str,
                     scenarios: Iterable[Scenario] = SCENARIOS) -> list[PointResult]:
    """Every traced point of every scenario, each from a fresh directory (``make_target(dir, strategy)``)."""
    results: list[PointResult] = []
    for sc in scenarios:
        ref = root / sc.name / "reference"
        points = engine_reference(ref, sc, partial(make_target, ref))
        for i, spec in enumerate(points):
            d = root / sc.name / f"p{i}"
            results.append(run_engine_point(d, sc, partial(make_target, d), spec, target_name))
    return results
