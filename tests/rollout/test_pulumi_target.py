"""PulumiStackTarget against the faithful Automation API fake: config writes, ups, checkpoints, rollback recovery."""

from __future__ import annotations

import getpass
import json
import os
import socket
import stat
from pathlib import Path

import pytest
from fake_automation import FakeStack, FakeWorkspace, ProgramRun, dead_pid, lock_stderr, services_program
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.k8s.outputs import Progress, RolloutState, ServiceOutputs
from components.spec import Color, Strategy
from infra.errors import ExitCode, InputError
from infra.progress import ENV
from infra.rollout.errors import CommandFailed, RollbackFailed, StackLocked, StackNotFound
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import TrafficState

SECRET = "s3cr3t-db-password"


def make_stack(name: str = "dev", **services: dict[str, object]) -> FakeStack:
    services = services or {
        "web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0", "strategy": "canary", "canaryWeight": 0},
        "api": {"namespace": "api", "image": "ghcr.io/acme/api:2.0", "strategy": "bluegreen",
                "activeColor": "blue"},
    }
    return FakeStack(name, config={"aws:region": "us-east-1", "gantry:services": services,
                                   "gantry:dbPassword": SECRET},
                     secret_keys={"gantry:dbPassword"}, program=services_program)


@pytest.fixture
def ws() -> FakeWorkspace:
    w = FakeWorkspace()
    w.add(make_stack())
    return w


def target(ws: FakeWorkspace, tmp_path: Path, service: str = "web", strategy: Strategy = Strategy.CANARY,
           lines: list[str] | None = None) -> PulumiStackTarget:
    return PulumiStackTarget("dev", service, tmp_path, strategy, stack_factory=ws.factory,
                             on_output=None if lines is None else lines.append,
                             checkpoint_dir=tmp_path / "checkpoints")


def web(stack: FakeStack) -> dict[str, object]:
    services = stack.config["gantry:services"]
    assert isinstance(services, dict)
    block = services["web"]
    assert isinstance(block, dict)
    return block


def test_unknown_stack_is_stack_not_found(ws: FakeWorkspace, tmp_path: Path) -> None:
    with pytest.raises(StackNotFound, match=r"'prod'.*pulumi stack init prod"):
        PulumiStackTarget("prod", "web", tmp_path, Strategy.CANARY, stack_factory=ws.factory)


def test_unknown_service_lists_the_valid_ones_before_any_mutation(ws: FakeWorkspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"one of the stack's services \(api, web\), but 'wbe'"):
        target(ws, tmp_path, service="wbe")
    assert ws.stacks["dev"].writes == [] and ws.stacks["dev"].ups == []


def test_canary_walk_runs_up_with_each_step_and_never_writes_the_stack_file(ws: FakeWorkspace,
                                                                            tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    original = json.loads(json.dumps(stack.config))
    t = target(ws, tmp_path)
    t.prepare("ghcr.io/acme/web:1.1")
    for w in (10, 50, 100):
        t.set_weights(w)
        step = json.loads(stack.envs[-1][ENV])
        assert (step["stack"], step["service"], step["progress"]["canaryWeight"]) == ("dev", "web", w)
        assert t.outputs()["canaryWeight"] == w
    assert t.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.0", "ghcr.io/acme/web:1.1", 100)
    t.promote()
    assert t.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.1", None, 0)
    assert len(stack.ups) == 5
    # The git-tracked stack file is never written: the progress lives in the stack's outputs.
    assert stack.writes == [] and stack.config == original
    deployed = ServiceOutputs.model_validate(t.outputs())
    assert (deployed.image, deployed.canary_image, deployed.canary_weight) == ("ghcr.io/acme/web:1.1", None, 0)
    assert deployed.rollout is not None and deployed.rollout.state is RolloutState.PROMOTED
    # The step reaches only its own `up`: the workspace's environment is as it was.
    assert ENV not in stack.workspace.env_vars
    # the other service was never touched
    assert ServiceOutputs.model_validate(stack.stack_outputs["services"]["api"]).rollout is None


def test_weights_are_stored_as_numbers_and_read_back(ws: FakeWorkspace, tmp_path: Path) -> None:
    t = target(ws, tmp_path)
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(25)
    assert ws.stacks["dev"].stack_outputs["services"]["web"]["canaryWeight"] == 25
    assert t.current().canary_weight == 25
    with pytest.raises(InputError, match="canaryWeight must be an integer from 0 to 100, but 101"):
        t.set_weights(101)


def test_bluegreen_prepares_the_inactive_color_then_switches(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path, service="api", strategy=Strategy.BLUEGREEN)
    t.prepare("ghcr.io/acme/api:2.1")
    state = t.current()
    assert (state.active_color, state.stable_image, state.preview_image) == (
        Color.BLUE, "ghcr.io/acme/api:2.0", "ghcr.io/acme/api:2.1")
    t.switch(Color.GREEN)
    t.promote()
    state = t.current()
    assert (state.active_color, state.stable_image) == (Color.GREEN, "ghcr.io/acme/api:2.1")
    deployed = ServiceOutputs.model_validate(t.outputs())
    # Both colors run the promoted image, so the old color idles; the stack file still says 2.0.
    assert (deployed.image, deployed.blue_image, deployed.green_image) == ("ghcr.io/acme/api:2.1",) * 3
    assert stack.config["gantry:services"]["api"]["image"] == "ghcr.io/acme/api:2.0"
    assert len(stack.ups) == 3 and stack.writes == []


def test_promote_twice_is_idempotent(ws: FakeWorkspace, tmp_path: Path) -> None:
    t = target(ws, tmp_path)
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(100)
    t.promote()
    t.promote()  # a resume may repeat the last action
    assert t.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.1", None, 0)


def test_progress_is_streamed_with_secrets_masked(ws: FakeWorkspace, tmp_path: Path) -> None:
    lines: list[str] = []
    t = target(ws, tmp_path, lines=lines)
    ws.stacks["dev"].program = lambda run: {"note": "x"}
    t.set_weights(0)
    t._emit(f"provider said password {SECRET}")
    assert any("Updating (dev)" in ln for ln in lines)
    assert any("1 updated" in ln for ln in lines)
    assert all(SECRET not in ln for ln in lines)


def test_checkpoint_has_progress_config_and_deployment_in_a_0600_file(ws: FakeWorkspace,
                                                                          tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    stack.deployment["resources"] = [{"urn": "u", "outputs": {"password": {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "plaintext": f'"{SECRET}"'}}}]
    cp = target(ws, tmp_path).checkpoint()
    path = Path(str(cp["file"]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    on_disk = json.loads(path.read_text())
    assert Progress.model_validate(on_disk["progress"]) == Progress(image="ghcr.io/acme/web:1.0")
    assert on_disk["config"]["aws:region"] == {"value": "us-east-1", "secret": False}
    assert on_disk["deployment"]["version"] == 3 and on_disk["deployment"]["deployment"]["resources"]
    assert SECRET not in path.read_text(), "secret config and secret outputs must be redacted on disk"


def test_locked_stack_becomes_stack_locked_naming_the_holder(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    stack.lock_by("alice", "laptop-7", 999)
    with pytest.raises(StackLocked) as info:
        t.set_weights(10)
    err = info.value
    assert (err.holder, err.host, err.pid, err.exit_code) == ("alice", "laptop-7", 999, ExitCode.LOCKED)


def test_command_error_becomes_command_failed_with_masked_stderr_tail(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    noise = "\n".join(f"diagnostic line {i}" for i in range(40))
    stack.fail("up", f"{noise}\nerror: aws:rds:Instance db: password={SECRET} rejected")
    with pytest.raises(CommandFailed) as info:
        t.set_weights(10)
    tail = info.value.stderr_tail
    assert "rejected" in tail and SECRET not in tail and "***" in tail
    assert "diagnostic line 0" not in tail, "only the tail of stderr is carried"


def test_revert_restores_the_checkpointed_progress_and_marks_it_rolled_back(ws: FakeWorkspace,
                                                                           tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    cp = t.checkpoint()
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(50)
    t.revert(cp)
    deployed = ServiceOutputs.model_validate(t.outputs())
    assert deployed.progress() == Progress(image="ghcr.io/acme/web:1.0").marked("ghcr.io/acme/web:1.1",
                                                                                RolloutState.ROLLED_BACK)
    assert web(stack) == {"namespace": "web", "image": "ghcr.io/acme/web:1.0", "strategy": "canary",
                          "canaryWeight": 0}
    assert "cancel" not in stack.calls and stack.writes == []


def test_revert_recovers_from_an_interrupted_up_then_retries_once(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    lines: list[str] = []
    t = target(ws, tmp_path, lines=lines)
    cp = t.checkpoint()
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(50)
    # the rollback's up is killed mid-way: the lock and a pending operation stay behind
    stack.fail("up", "error: update canceled", interrupt=True)
    t.revert(cp)
    tail = [c for c in stack.calls if c in ("up", "cancel", "export_stack", "import_stack", "refresh")]
    # The failed up is not a lock error, so nothing is cancelled blindly: the import meets the lock,
    # whose pulumi process is gone (stale), and only then is it cancelled and the import redone.
    assert tail[-7:] == ["up", "export_stack", "import_stack", "cancel", "import_stack", "refresh", "up"]
    assert stack.lock is None and stack.deployment["pending_operations"] == []
    assert t.current().canary_weight == 0
    assert any("cleared 1 pending operation" in ln for ln in lines)


def test_revert_that_fails_twice_names_checkpoint_and_recovery_commands(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    cp = t.checkpoint()
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(50)
    stack.fail("up", "error: provider crashed", times=2)
    with pytest.raises(RollbackFailed) as info:
        t.revert(cp)
    msg = str(info.value)
    assert info.value.exit_code == ExitCode.OPERATOR
    assert str(cp["file"]) in msg
    for command in ("pulumi cancel --stack dev", "pulumi stack export --stack dev", "pending_operations",
                    "pulumi stack import --stack dev", "pulumi refresh --stack dev",
                    f"{ENV}=", "pulumi up --stack dev --yes"):
        assert command in msg
    # The printed step restores the checkpoint when run by hand (shell-quoted JSON of the reverted progress).
    import shlex

    line = next(ln for ln in msg.splitlines() if ln.startswith(f"{ENV}="))
    step = json.loads(shlex.split(line)[0].split("=", 1)[1])
    assert Progress.model_validate(step["progress"]).image == "ghcr.io/acme/web:1.0"
    assert stack.calls.count("up") == 4  # prepare, the step, the rollback, the one retry


@pytest.mark.parametrize("holder", ["other-host", "same-host-live-pid"])
def test_revert_never_cancels_a_live_foreign_update(ws: FakeWorkspace, tmp_path: Path, holder: str) -> None:
    # An outside `pulumi up` by the same user on the same machine writes the same user@host as ours would:
    # only a dead pid proves a lock stale. Another host's lock is never ours.
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    cp = t.checkpoint()
    lock = ("bob", "other-runner", 77) if holder == "other-host" else (getpass.getuser(), socket.gethostname(),
                                                                       os.getpid())
    stack.lock_by(*lock)
    with pytest.raises(StackLocked) as info:
        t.revert(cp)
    assert info.value.exit_code is ExitCode.LOCKED and info.value.pid == lock[2]
    assert "cancel" not in stack.calls and "refresh" not in stack.calls
    assert stack.lock == lock


def test_revert_cancels_a_stale_lock_of_this_host(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    cp = t.checkpoint()
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(50)
    stack.lock_by(getpass.getuser(), socket.gethostname(), dead_pid())  # a killed gantry's pulumi up
    t.revert(cp)
    assert stack.lock is None and "cancel" in stack.calls
    assert t.current().canary_weight == 0


def test_lock_message_parses_like_the_cli_prints_it() -> None:
    from fake_automation import cli_error
    from pulumi.automation.errors import ConcurrentUpdateError

    from infra.rollout.automation_errors import translate

    err = cli_error(lock_stderr("dev", "carol", "host-9", 12))
    assert isinstance(err, ConcurrentUpdateError)
    locked = translate(err, "dev", "up")
    assert isinstance(locked, StackLocked) and "carol on host-9 (pid 12)" in str(locked)


def test_bluegreen_revert_switches_back_and_drops_the_new_color_image(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path, service="api", strategy=Strategy.BLUEGREEN)
    cp = t.checkpoint()
    t.prepare("ghcr.io/acme/api:2.1")
    t.switch(Color.GREEN)
    t.revert(cp)
    deployed = ServiceOutputs.model_validate(t.outputs())
    assert (deployed.active_color, deployed.blue_image, deployed.green_image) == (
        Color.BLUE, "ghcr.io/acme/api:2.0", "ghcr.io/acme/api:2.0")
    assert t.current().active_color is Color.BLUE and stack.writes == []


def test_a_read_only_stack_file_does_not_stop_a_rollout(ws: FakeWorkspace, tmp_path: Path) -> None:
    # A pipeline's checkout may be read-only: the rollout writes no stack config at all.
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    stack.fail("config", "error: could not save Pulumi.dev.yaml: permission denied", times=10)
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(10)
    assert t.current().canary_weight == 10 and stack.writes == []


_ops = st.lists(st.one_of(
    st.tuples(st.just("prepare"), st.sampled_from(["ghcr.io/acme/web:1.1", "ghcr.io/acme/web@sha256:" + "a" * 64])),
    st.tuples(st.just("weight"), st.integers(0, 100)),
    st.tuples(st.just("promote"), st.just(0)),
), max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, fail_first_rollback=st.booleans())
def test_any_walk_then_revert_restores_the_checkpointed_service(tmp_path: Path, ops: list[tuple[str, object]],
                                                                 fail_first_rollback: bool) -> None:
    ws = FakeWorkspace()
    stack = ws.add(make_stack())
    original = json.loads(json.dumps(stack.config))
    t = PulumiStackTarget("dev", "web", tmp_path, Strategy.CANARY, stack_factory=ws.factory,
                          checkpoint_dir=tmp_path / "cp")
    cp = t.checkpoint()
    for op, arg in ops:
        if op == "prepare":
            t.prepare(str(arg))
        elif op == "weight":
            if t.current().canary_image is not None:
                t.set_weights(int(str(arg)))
        else:
            t.promote()
        state = t.current()
        assert 0 <= state.canary_weight <= 100
    if fail_first_rollback:
        stack.fail("up", "error: interrupted", interrupt=True)
    t.revert(cp)
    assert stack.config == original and stack.writes == []
    assert t.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.0", None, 0)
    assert stack.lock is None and stack.deployment["pending_operations"] == []


@pytest.mark.parametrize("method", ["get_all_config", "get_config", "set_config", "set_all_config", "remove_config",
                                    "remove_all_config", "up", "refresh", "cancel", "outputs", "export_stack",
                                    "import_stack"])
def test_the_fake_accepts_nothing_the_real_stack_does_not(method: str) -> None:
    import inspect

    from pulumi.automation import Stack

    real = inspect.signature(getattr(Stack, method)).parameters
    fake = inspect.signature(getattr(FakeStack, method)).parameters
    named = [n for n, p in fake.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert set(named) <= set(real), f"FakeStack.{method} has parameters the real Stack lacks"
    for name in named:
        assert fake[name].kind is real[name].kind or real[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_current_is_the_live_state_not_an_unapplied_config_write(ws: FakeWorkspace, tmp_path: Path) -> None:
    stack = ws.stacks["dev"]
    t = target(ws, tmp_path)
    t.prepare("ghcr.io/acme/web:1.1")
    t.set_weights(10)
    stack.fail("up", "error: killed")
    with pytest.raises(CommandFailed):
        t.set_weights(25)
    assert json.loads(stack.envs[-1][ENV])["progress"]["canaryWeight"] == 10
    assert t.current().canary_weight == 10, "traffic is still where the last successful up left it"


def test_current_falls_back_to_config_before_the_program_exports_anything(ws: FakeWorkspace,
                                                                          tmp_path: Path) -> None:
    services = ws.stacks["dev"].config["gantry:services"]
    services["web"].update(canaryImage="ghcr.io/acme/web:1.1", canaryWeight=30)
    ws.stacks["dev"].program = None
    t = target(ws, tmp_path)
    assert t.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.0", "ghcr.io/acme/web:1.1", 30)


def test_outputs_that_break_the_contract_are_an_input_error(ws: FakeWorkspace, tmp_path: Path) -> None:
    def renamed(run: ProgramRun) -> dict[str, object]:
        out = services_program(run)
        web = out["services"]["web"]
        web["canaryWeigth"] = web.pop("canaryWeight")
        return out

    ws.stacks["dev"].program = renamed
    t = target(ws, tmp_path)
    t.set_weights(0)
    with pytest.raises(InputError, match="canaryWeigth"):
        t.current()


def test_stack_without_a_services_map_is_an_input_error(tmp_path: Path) -> None:
    ws = FakeWorkspace()
    ws.add(FakeStack("dev", config={"aws:region": "us-east-1"}))
    with pytest.raises(InputError, match=r"one of the stack's services \(none\), but 'web'"):
        PulumiStackTarget("dev", "web", tmp_path, Strategy.CANARY, stack_factory=ws.factory)
