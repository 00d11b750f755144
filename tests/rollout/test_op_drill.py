"""In-operation faults: named kill points inside target operations, PulumiStackTarget's drill, the end check.

The drill forks an engine over PulumiStackTarget on the file-backed fake Automation API, SIGKILLs it
after every single effect (config set, config rm, up) of every operation, resumes it in this process and
checks what the stack really runs. The HaproxyTarget drill (real CLI, real sandbox) is in
tests/sandbox/test_haproxy_op_drill.py.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from drills import SCENARIOS, StepAnalysis, numbered, run_engine_drill
from fake_automation import FakeStack, FakeWorkspace, services_program
from fakes import JsonFileTarget
from pulumi_drill import make_pulumi_target

from components.spec import Strategy
from infra.rollout import faults
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine
from infra.rollout.journal import EntryKind, SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.scheduler import canary_plan
from infra.rollout.seams import Phase, StackName, TrafficState


def _child(env: dict[str, str], log: Path) -> int:
    """Fork a child that passes points a, b, a, c (logging each), with ``env``; return its wait status."""
    pid = os.fork()
    if pid == 0:
        try:
            os.environ.update(env)
            faults.reset()
            for name in ("a", "b", "a", "c"):
                faults.point(name)
                with open(log, "a") as fh:
                    fh.write(name)
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_an_unarmed_point_never_kills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV_KILL_POINT, raising=False)
    monkeypatch.delenv(faults.ENV_TRACE, raising=False)
    status = _child({}, tmp_path / "log")
    assert os.WIFEXITED(status) and (tmp_path / "log").read_text() == "abac"


def test_an_armed_point_kills_at_its_nth_passage_only(tmp_path: Path) -> None:
    status = _child({faults.ENV_KILL_POINT: "a#2"}, tmp_path / "log")
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert (tmp_path / "log").read_text() == "ab"  # died right after the second passage of a


def test_the_trace_lists_every_passage_in_order(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    status = _child({faults.ENV_TRACE: str(trace)}, tmp_path / "log")
    assert os.WIFEXITED(status)
    assert numbered(trace.read_text().splitlines()) == ["a#1", "b#1", "a#2", "c#1"]


def test_pulumi_drill_every_point_resumes_consistent(tmp_path: Path) -> None:
    results = run_engine_drill(tmp_path, make_pulumi_target, "pulumi", SCENARIOS)
    bad = [(r.scenario, r.point, r.problems) for r in results if not r.consistent]
    assert bad == []
    assert all(r.killed for r in results)
    operations = {r.point.split(".")[2] for r in results}
    assert operations == {"prepare", "set-weights", "switch", "promote", "revert"}
    effects = {r.point.split(".")[3].split("#")[0] for r in results}
    assert effects == {"up"}  # one effect per operation: the rollout writes no stack config
    assert len(results) >= 15  # every `up` of every scenario (the config writes that doubled this are gone)


def _stack() -> FakeStack:
    services = {"web": {"namespace": "web", "image": "app:1.0", "strategy": "canary", "canaryWeight": 0}}
    stack = FakeStack("dev", config={"gantry:services": services}, program=services_program)
    stack.up()
    return stack


def test_pulumi_end_check_sees_a_service_left_held_and_pending_operations(tmp_path: Path) -> None:
    ws = FakeWorkspace()
    stack = ws.add(_stack())
    t = PulumiStackTarget("dev", "web", tmp_path, Strategy.CANARY, stack_factory=ws.factory)
    assert t.verify_serving(t.current()) == []
    # A rollout that ended without letting go of the service would freeze it for every later `pulumi up`.
    t.prepare("app:1.1")
    problems = t.verify_serving(t.current())
    assert problems == ["stack dev still shows web held by a rollout in progress"]
    t.promote()
    assert t.verify_serving(t.current()) == []
    stack.deployment["pending_operations"] = [{"resource": {"urn": "urn:x"}, "type": "updating"}]
    assert t.verify_serving(t.current()) == ["stack dev has 1 pending operation(s)"]


class BlindTarget(JsonFileTarget):
    """Its state agrees with the journal, but users get something else (the D2 outage)."""

    def verify_serving(self, live: TrafficState) -> list[str]:
        return [f"0/20 sampled requests were served by {live.stable_image}"]


def test_engine_never_reports_verified_when_users_see_otherwise(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    clock = FakeClock()
    engine = Engine(target=BlindTarget(tmp_path / "t.json"), analysis=StepAnalysis(), journal=SqliteJournal(db),
                    lock=SqliteLock(db, clock), clock=clock, poll=30.0)
    outcome = engine.start(stack=StackName("s"), service="web", image="app:2.0",
                           plan=canary_plan([50, 100], interval=30.0, threshold=1))
    assert outcome.phase is Phase.PROMOTED and not outcome.verified
    assert outcome.mismatches == ("0/20 sampled requests were served by app:2.0",)
    verified = [e for e in engine.journal.entries(outcome.rollout_id) if e.kind is EntryKind.VERIFIED]
    assert [e.data["ok"] for e in verified] == [False]
