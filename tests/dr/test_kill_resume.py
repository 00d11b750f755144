"""Crash drill: SIGKILL ``failover``/``failback`` at every journal boundary and after every target effect, resume.

A forked child runs the engine on the Automation API fake (its stacks persisted in a file, so the parent
sees what the child did) and kills itself at one boundary; the parent then runs the same operation again,
as ``gantry dr failover`` would, and checks what matters: the operation ends done exactly once, every step
was applied exactly once, and each stack's last ``up`` deployed the config it holds (no write left unapplied).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

import pytest
from dr_helpers import make_settings
from fake_automation import FakeStack, services_program

from infra.dr.engine import STEPS, DrEngine, Operation, journal_stack
from infra.dr.pulumi_target import PulumiDrTarget
from infra.rollout import faults
from infra.rollout.clock import FakeClock
from infra.rollout.journal import AppendHook, EntryKind, SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.pulumi_target import StackHandle
from infra.rollout.seams import Phase, RolloutId

SETTINGS = make_settings(replicationLag=None)
SERVICES = {"web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0", "replicas": 1}}

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout"))  # the crash drills' helpers
from drills import kill_hook  # noqa: E402


class FileStack:
    """A FakeStack whose state lives in a file: every call loads it, runs on it, and saves it (atomically)."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name

    def __getattr__(self, attr: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            stacks = pickle.loads(self.path.read_bytes())
            result = getattr(stacks[self.name], attr)(*args, **kwargs)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(stacks))
            os.replace(tmp, self.path)
            return result

        return call


def seed(workdir: Path, failed_over: bool) -> Path:
    path = workdir / "stacks.pickle"
    prod = FakeStack("prod", config={"gantry:services": SERVICES, "gantry:dr": {"primary": "prod"}},
                     program=services_program)
    dr = FakeStack("prod-dr", config={"gantry:services": {"web": {**SERVICES["web"]}}}, program=services_program)
    if failed_over:
        prod.config["gantry:dr"] = {"primary": "prod", "active": "standby"}
        dr.config["gantry:services"] = {"web": {**SERVICES["web"], "replicas": 3}}
    path.write_bytes(pickle.dumps({"prod": prod, "prod-dr": dr}))
    return path


def load(path: Path) -> Mapping[str, FakeStack]:
    stacks: Mapping[str, FakeStack] = pickle.loads(path.read_bytes())
    return stacks


def engine(workdir: Path, op: Operation, on_append: AppendHook | None = None) -> DrEngine:
    path = workdir / "stacks.pickle"
    # Failover: prod is down, prod-dr answers. Failback: both answer.
    healthy = ("usw2",) if op is Operation.FAILOVER else ("usw2", "use1")

    def prober(url: str, timeout: float) -> tuple[bool, str]:
        ok = any(h in url for h in healthy)
        return ok, "HTTP 200" if ok else "timeout"

    def factory(name: str, _dir: Path) -> StackHandle:
        return cast(StackHandle, FileStack(path, name))

    target = PulumiDrTarget(SETTINGS, workdir, stack_factory=factory, prober=prober)
    clock = FakeClock()
    journal = SqliteJournal(workdir / "journal.db", on_append=on_append)
    return DrEngine(SETTINGS, target, journal, SqliteLock(journal.path, clock), clock)


def run(e: DrEngine, op: Operation) -> object:
    return e.failover() if op is Operation.FAILOVER else e.failback()


def fork(workdir: Path, op: Operation, env: Mapping[str, str], on_append: AppendHook | None = None) -> bool:
    """Run ``op`` in a forked child; True if it died by SIGKILL."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.environ.update(env)
            faults.reset()
            run(engine(workdir, op, on_append), op)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def reference(workdir: Path, op: Operation) -> tuple[int, list[str]]:
    """Appends and effect points of an uninterrupted run."""
    workdir.mkdir(parents=True)
    seed(workdir, failed_over=op is Operation.FAILBACK)
    trace = workdir / "trace.txt"
    assert not fork(workdir, op, {faults.ENV_TRACE: str(trace)})
    journal = SqliteJournal(workdir / "journal.db")
    try:
        (record,) = journal.history(journal_stack(SETTINGS))
        appends = len(journal.entries(record.id))
    finally:
        journal.close()
    seen: dict[str, int] = {}
    points = []
    for name in trace.read_text().split():
        seen[name] = seen.get(name, 0) + 1
        points.append(f"{name}#{seen[name]}")
    return appends, points


def check(workdir: Path, op: Operation) -> list[str]:
    """Resume the operation here and list what is wrong with the end state."""
    e = engine(workdir, op)
    problems: list[str] = []
    try:
        # Killed after its last append, the operation had finished: running the command again is a new
        # (idempotent) operation, not a resume.
        finished = [r for r in e.journal.history(journal_stack(SETTINGS)) if r.phase.terminal]
        outcome = run(e, op)
        records = e.journal.history(journal_stack(SETTINGS))
        if [r.phase for r in records] != [Phase.PROMOTED] * (1 + len(finished)):
            problems.append(f"records {[(r.id, r.phase.value) for r in records]}")
        rid = RolloutId(records[0].id)
        applied = [str(x.data["step"]) for x in e.journal.entries(rid) if x.kind is EntryKind.APPLIED]
        if applied != list(STEPS[op]):
            problems.append(f"applied {applied}")
        if getattr(outcome, "result", None) != "done":
            problems.append(f"outcome {outcome}")
    finally:
        e.journal.close()
    stacks = load(workdir / "stacks.pickle")
    want_active, want_replicas = ("standby", 3) if op is Operation.FAILOVER else ("primary", 1)
    prod, dr = stacks["prod"], stacks["prod-dr"]
    if not isinstance(prod.config["gantry:dr"], dict) or prod.config["gantry:dr"].get("active", "primary") != \
            want_active:
        problems.append(f"traffic stack holds {prod.config['gantry:dr']}")
    services = dr.config["gantry:services"]
    assert isinstance(services, dict)
    if services["web"]["replicas"] != want_replicas:
        problems.append(f"standby replicas {services['web']['replicas']}")
    for stack in (prod, dr):
        if stack.ups and stack.ups[-1] != stack.config:
            problems.append(f"{stack.name}: config written but never deployed")
    if not dr.ups:
        problems.append("the standby was never deployed")
    return problems


@pytest.mark.parametrize("op", [Operation.FAILOVER, Operation.FAILBACK])
def test_a_kill_at_every_boundary_resumes_to_the_same_end(tmp_path: Path, op: Operation) -> None:
    appends, points = reference(tmp_path / "ref", op)
    assert appends >= 2 * len(STEPS[op]) + 2
    assert {p.split("#")[0] for p in points} == {"dr.scale.config-set", "dr.scale.up", "dr.switch.config-set",
                                                 "dr.switch.up"}
    failures: dict[str, list[str]] = {}
    cases: list[tuple[str, Mapping[str, str], AppendHook | None]] = [
        (f"{when}:{n}", {}, kill_hook(when, n)) for n in range(1, appends + 1) for when in ("before", "after")]
    cases += [(p, {faults.ENV_KILL_POINT: p}, None) for p in points]
    for i, (name, env, hook) in enumerate(cases):
        workdir = tmp_path / f"case{i}"
        workdir.mkdir()
        seed(workdir, failed_over=op is Operation.FAILBACK)
        if not fork(workdir, op, env, hook):
            failures[name] = ["the child was not killed there"]
            continue
        problems = check(workdir, op)
        if problems:
            failures[name] = problems
    assert failures == {}
    assert len(cases) >= 2 * appends + 4
