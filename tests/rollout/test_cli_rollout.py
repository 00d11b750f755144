"""`gantry rollout ...` and `gantry rollback`: input validated before anything is touched, and the exit codes
0 promoted, 1 rolled back, 2 input, 3 locked, 4 rollback failed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import drill_cli
import pytest
from fakes import FakeTarget, JsonFileTarget
from rollout_rig import make_plan, make_rig
from typer.testing import CliRunner

from components.spec import Strategy
from infra.cli import app
from infra.errors import InputError
from infra.rollout import factory
from infra.rollout.clock import SystemClock
from infra.rollout.journal import EntryKind, SqliteJournal, journal_path
from infra.rollout.lock import SqliteLock
from infra.rollout.seams import AnalysisContext, AnalysisResult, RolloutId, StackName, Verdict

runner = CliRunner()
GATE = f"{sys.executable} -c \\\"import os; print(os.environ.get('GATE_VALUE', '0.0'))\\\""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: drill\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.drill.yaml").write_text(f"""config:
  gantry:cloud: local
  gantry:environment: drill
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
    api: {{namespace: api, image: "app:1.0", strategy: bluegreen}}
  gantry:rollout:
    steps: [10, 50, 100]
    interval: 0s
    threshold: 1
    judge: threshold
    target: file
    postPromotionWindow: 0s
    scaleDownDelay: 0s
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{GATE}", max: 0.05}}]
""")
    return tmp_path


def gantry(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project", str(project)])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def start(project: Path, *extra: str, service: str = "web", image: str = "app:2.0") -> tuple[int, str, str]:
    return gantry(project, "rollout", "start", "--stack", "drill", "--service", service, "--image", image, *extra)


def live(project: Path, service: str = "web") -> JsonFileTarget:
    return JsonFileTarget(drill_cli.file_target_path(project, "drill", service))


@pytest.mark.parametrize(("args", "message"), [
    (["--steps", "10,5,100"], "--steps must be strictly increasing, but [10, 5, 100] was given"),
    (["--steps", "0,50"], "--steps[0] must be within 1..100, but 0 was given"),
    (["--steps", "10,x"], "--steps must be comma-separated integers such as 10,25,50,100, but '10,x' was given"),
    (["--image", "app:latest"], "--image must be an image pinned by a tag other than 'latest' or by a sha256 "
                                "digest, but 'app:latest' was given"),
    (["--image", "app"], "--image must be an image pinned"),
    (["--service", "nope"], "service must be one of the stack's services (api, web), but 'nope' was given"),
    (["--strategy", "bluegreen"], "services.web.strategy must be bluegreen for this rollout, but 'canary' was given"),
    (["--interval", "5"], "--interval must be a number with a unit ms, s, m or h (e.g. 30s), but '5' was given"),
    (["--step-weight", "30", "--max-weight", "20"], "--max-weight must be within stepWeight (30)..100, but 20"),
    (["--threshold", "0"], "--threshold must be >= 1, but 0 was given"),
    (["--threshold", "101"], "--threshold must be <= 100, but 101 was given"),
    (["--stack", "nope"], "stack file not found; known stacks: drill"),
])
def test_bad_input_exits_2_before_anything_is_touched(project: Path, args: list[str], message: str) -> None:
    base = {"--stack": "drill", "--service": "web", "--image": "app:2.0"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    code, out, err = gantry(project, "rollout", "start", *[x for kv in base.items() for x in kv])
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err
    assert not (project / ".gantry").exists(), "nothing may be created for bad input"


def test_healthy_canary_promotes_with_json_events(project: Path) -> None:
    code, out, _ = start(project, "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "outcome" and events[-1]["phase"] == "promoted"
    assert [e["data"]["weight"] for e in events if e["event"] == "analysis"] == [10, 50, 100]
    assert [e["seq"] for e in events[:-1]] == sorted(e["seq"] for e in events[:-1])
    assert live(project).current().stable_image == "app:2.0"


def test_linear_steps_from_flags(project: Path) -> None:
    code, out, _ = start(project, "--step-weight", "40", "--max-weight", "100", "--json")
    assert code == 0
    assert [e["weight"] for e in map(json.loads, out.splitlines()) if e["event"] == "analysis"] == [40, 80, 100]


def test_bluegreen_promotes_through_the_file_target(project: Path) -> None:
    code, _, _ = start(project, service="api")
    assert code == 0
    assert live(project, "api").current().stable_image == "app:2.0"


def test_bad_canary_rolls_back_exit_1_then_quarantine_needs_force(project: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_VALUE", "0.2")
    code, out, _ = start(project, "--json")
    assert code == 1
    assert json.loads(out.splitlines()[-1])["phase"] == "rolled_back"
    assert live(project).current().canary_weight == 0
    code, _, err = start(project)
    assert code == 2 and "quarantined" in err and "--force" in err
    monkeypatch.setenv("GATE_VALUE", "0.0")
    code, _, _ = start(project, "--force")
    assert code == 0


def test_locked_stack_exits_3_naming_the_holder(project: Path) -> None:
    lock = SqliteLock(journal_path(project), SystemClock(), holder="bob", host="ci-runner-9", pid=777)
    lock.acquire(StackName("drill"), RolloutId("r-held"))
    code, _, err = start(project)
    assert code == 3
    for part in ("bob", "ci-runner-9", "777", "expires"):
        assert part in err


def test_failed_rollback_exits_4(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_VALUE", "0.9")
    monkeypatch.setattr(factory, "make_target", lambda name, **kw: FakeTarget(fail_always=["revert"]))
    code, out, _ = start(project)
    assert code == 4
    assert "failed" in out


def _unfinished(project: Path) -> str:
    """A rollout whose process died at the 50% step (journal and file target left as they were)."""

    class Dies:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            if ctx.step_index == 1:
                raise KeyboardInterrupt
            return AnalysisResult(Verdict.PASS, ())

    (project / ".gantry" / "targets").mkdir(parents=True, exist_ok=True)
    target = JsonFileTarget(drill_cli.file_target_path(project, "drill", "web"), Strategy.CANARY, "app:1.0")
    plan = make_plan(weights=(10, 50, 100), interval=0.0)
    rig = make_rig(project, target=target, analysis=Dies(), plan=plan)
    with pytest.raises(KeyboardInterrupt):
        rig.engine.start(stack=StackName("drill"), service="web", image="app:2.0", plan=rig.plan)
    return rig.journal.history()[0].id


def test_abort_rolls_back_an_unfinished_rollout(project: Path) -> None:
    rid = _unfinished(project)
    assert live(project).current().canary_weight == 50
    code, _, _ = gantry(project, "rollout", "abort", rid)
    assert code == 1
    assert live(project).current().canary_weight == 0
    code, out, _ = gantry(project, "rollout", "status", rid, "--json")
    assert code == 0 and json.loads(out)["phase"] == "rolled_back"


def test_pause_then_resume(project: Path) -> None:
    rid = _unfinished(project)
    code, _, _ = gantry(project, "rollout", "pause", rid)
    assert code == 0
    assert json.loads(gantry(project, "rollout", "status", rid, "--json")[1])["phase"] == "paused"
    code, _, _ = gantry(project, "rollout", "resume", rid)
    assert code == 0
    assert live(project).current().stable_image == "app:2.0"


def test_promote_needs_skip_analysis_and_records_the_override(project: Path) -> None:
    rid = _unfinished(project)
    code, _, err = gantry(project, "rollout", "promote", rid)
    assert code == 2 and "--skip-analysis must be given" in err
    code, _, _ = gantry(project, "rollout", "promote", "--skip-analysis", rid)
    assert code == 0
    journal = SqliteJournal(journal_path(project))
    decisions = [e.data for e in journal.entries(RolloutId(rid)) if e.kind is EntryKind.DECISION]
    assert decisions[-1]["decision"] == "promote" and decisions[-1]["override"] is True


def test_status_of_an_unknown_rollout_exits_2(project: Path) -> None:
    code, _, err = gantry(project, "rollout", "status", "r-missing")
    assert code == 2 and "'r-missing'" in err


def test_history_lists_newest_first(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start(project, image="app:2.0")
    start(project, image="app:3.0")
    code, out, _ = gantry(project, "rollout", "history", "--stack", "drill", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["image"], r["phase"]) for r in rows] == [("app:3.0", "promoted"), ("app:2.0", "promoted")]


def test_rollback_reverts_the_last_promoted_rollout(project: Path) -> None:
    assert start(project, image="app:2.0")[0] == 0
    assert start(project, image="app:3.0")[0] == 0
    code, out, _ = gantry(project, "rollback", "--stack", "drill", "--json")
    assert code == 0
    assert json.loads(out.splitlines()[-1])["phase"] == "rolled_back"
    assert live(project).current().stable_image == "app:2.0"
    code, _, err = start(project, image="app:3.0")
    assert code == 2 and "quarantined" in err


def test_rollback_to_a_named_checkpoint(project: Path) -> None:
    start(project, image="app:2.0")
    first = SqliteJournal(journal_path(project)).history()[0].id
    start(project, image="app:3.0")
    code, _, _ = gantry(project, "rollback", "--stack", "drill", "--to", first)
    assert code == 0
    assert live(project).current().stable_image == "app:1.0"


def test_rollback_with_nothing_to_revert_exits_2(project: Path) -> None:
    code, _, err = gantry(project, "rollback", "--stack", "drill")
    assert code == 2 and "no promoted rollout" in err


def test_unknown_target_backend_lists_the_valid_ones(project: Path) -> None:
    from infra import registry

    with pytest.raises(InputError, match=r"rollout.target.kind must be one of file, haproxy, pulumi, but 'k8s' was"):
        registry.TARGETS.model("k8s")
    stack = project / "stacks" / "Pulumi.drill.yaml"
    stack.write_text(stack.read_text().replace("target: file", "target: k8s"))
    code, _, err = gantry(project, "rollout", "start", "--stack", "drill", "--service", "web", "--image", "app:2.0")
    assert code == 2 and "gantry:rollout.target.kind must be one of file, haproxy, pulumi, but 'k8s' was given" in err


def test_the_installed_cli_offers_no_file_target(project: Path) -> None:
    """`file` is a test fake: the real CLI, started without the drills' launcher, refuses it at load."""
    done = subprocess.run([sys.executable, "-m", "infra.cli", "rollout", "start", "--stack", "drill", "--service",
                           "web", "--image", "app:2.0", "--project", str(project)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "rollout.target.kind must be one of haproxy, pulumi, but 'file' was given" in done.stderr



def test_a_target_that_cannot_be_reached_is_exit_2_not_a_rollback(project: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.rollout.errors import CommandFailed

    def unreachable(name: str, **kw: object) -> FakeTarget:
        raise CommandFailed("select", "the pulumi CLI must be on PATH")

    monkeypatch.setattr(factory, "make_target", unreachable)
    code, _, err = start(project)
    assert code == 2
    assert "pulumi CLI must be on PATH" in err and "nothing was changed" in err
    assert SqliteJournal(journal_path(project)).history() == []


def test_resume_of_a_paused_rollout_whose_process_lives_records_the_resume_and_exits_3(project: Path) -> None:
    import os
    import socket

    rid = _unfinished(project)
    assert gantry(project, "rollout", "pause", rid)[0] == 0
    # Its engine is alive on this host (our parent process stands in for it) and holds the lease.
    SqliteLock(journal_path(project), SystemClock(), holder="ci", host=socket.gethostname(),
               pid=os.getppid()).acquire(StackName("drill"), RolloutId(rid))
    code, out, err = gantry(project, "rollout", "resume", rid)
    # Recorded for the live engine to act on, but nothing ran here: exit 3 naming it, never 0 (promoted).
    assert "resume recorded" in out
    assert code == 3 and f"pid {os.getppid()}" in err and socket.gethostname() in err
    journal = SqliteJournal(journal_path(project))
    operator = [e.data["action"] for e in journal.entries(RolloutId(rid)) if e.kind is EntryKind.OPERATOR]
    assert operator == ["pause", "resume"]
    assert journal.get(RolloutId(rid)).phase.value == "progressing"
    assert live(project).current().canary_weight == 50, "the live engine, not this process, continues"
