"""A faithful in-memory fake of the ``pulumi.automation`` stack surface ``PulumiStackTarget`` uses.

Used by tests/rollout/test_pulumi_target*.py. Faithful where it matters to the target:
- config is held the way a stack file holds it (top-level ``namespace:key`` entries, structured
  values as nested maps); ``get_all_config`` returns structured values as JSON text, like
  ``pulumi config --json``; ``path=True`` writes parse ``true``/``false``/integers, like the CLI;
- failures are produced as the CLI would print them (stderr text) and classified by the real
  ``pulumi.automation.errors.create_command_error``, so the real error classes come out;
- an interrupted ``up`` leaves behind a lock naming the killed ``pulumi`` process (this host, a pid
  that no longer exists) and ``pending_operations``; a locked stack refuses ``up``/``refresh``/``import``
  with the DIY backend's lock message, while config writes and ``export`` still work;
- as on the real engine (checked by the ``engine`` tests against a real CLI): pending operations do not
  block ``up``, which warns and then drops them except pending creates (those survive an ``up`` and a
  non-interactive refresh until cleared by export, edit, import); ``cancel`` never fails and, as the
  file backend does, deletes every lock of the stack, whoever holds it; ``--path`` writes store only
  canonical integers (``10``, not ``010``) and ``true``/``false`` as numbers and booleans;
- each ``up`` runs the program with the stack's config, the workspace's environment (``env_vars``, which
  the CLI passes down to the program) and the previous update's outputs *as a program reads them* through
  the engine (``pulumi:pulumi:readStackOutputs``): nulls dropped, numbers as floats; a program that raises
  fails the ``up`` as the CLI reports it, and the outputs stay those of the last successful update.
``services_program`` is the Gantry program's service half: it runs the real ``infra.progress`` resolution
and exports the typed ``ServiceOutputs``, so the fake and the program cannot disagree on a key.
Every call is recorded in ``calls``; config writes in ``writes``; each ``up`` snapshots the config.
"""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.automation import ConfigValue, Deployment, OutputValue
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, create_command_error


@dataclass(frozen=True)
class ProgramRun:
    """What a program run by ``up`` gets: its stack, config, environment and the previous outputs."""

    stack: str
    config: Mapping[str, object]
    env: Mapping[str, str]
    previous: Mapping[str, object]


Program = Callable[[ProgramRun], dict[str, object]]


def program_view(value: object) -> object:
    """Outputs as a program reads them back through the engine: nulls dropped, numbers as floats
    (checked against the real CLI by tests/rollout/test_gitops_engine.py)."""
    if isinstance(value, dict):
        return {k: program_view(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [program_view(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@dataclass
class FakeStackWorkspace:
    """The workspace's environment for the CLI it runs (``LocalWorkspace.env_vars``)."""

    env_vars: Mapping[str, str] = field(default_factory=dict)


def cli_error(stderr: str, code: int = 255, stdout: str = "") -> CommandError:
    """The error the Automation API raises for a CLI run that printed ``stderr``."""
    return create_command_error(CommandResult(stdout=stdout, stderr=stderr, code=code))


def lock_stderr(stack: str, user: str, host: str, pid: int) -> str:
    return (f"error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end "
            f"or delete the lock file with `pulumi cancel`.\n  file:///state/.pulumi/locks/{stack}/x.json: "
            f"created by {user}@{host} (pid {pid}) at 2026-11-27T00:00:00Z")


def not_found_stderr(stack: str) -> str:
    return f"error: no stack named '{stack}' found"


def _parse_path_value(text: str) -> object:
    # `pulumi config set --path` stores true/false as booleans and canonical integers as numbers;
    # "010", "+5" or "1.5" stay strings (checked against the real CLI).
    if text in ("true", "false"):
        return text == "true"
    try:
        number = int(text)
    except ValueError:
        return text
    return number if str(number) == text else text


def dead_pid() -> int:
    """A pid no process can have (above the kernel's pid_max): the killed ``pulumi`` of an interrupted update."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except (OSError, ValueError):
        return 2**22 + 1


def _split(key: str) -> tuple[str, list[str]]:
    namespace, _, rest = key.partition(":")
    top, *path = rest.split(".")
    return f"{namespace}:{top}", path


@dataclass
class Failure:
    """A scripted failure of one operation. ``interrupt`` leaves a lock and a pending operation behind."""

    stderr: str
    interrupt: bool = False


@dataclass
class FakeStack:
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    secret_keys: set[str] = field(default_factory=set)
    program: Program | None = None
    user: str = "ci"
    host: str = field(default_factory=socket.gethostname)
    """The machine the CLI runs on: the Automation API runs ``pulumi`` where gantry runs."""
    pid: int = field(default_factory=dead_pid)
    """The ``pulumi`` process of the last update; interrupted, it is gone, so its lock is stale."""
    deployment: dict[str, object] = field(default_factory=lambda: {
        "manifest": {"time": "2026-11-27T00:00:00Z"}, "resources": [], "pending_operations": []})
    lock: tuple[str, str, int] | None = None
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    writes: list[tuple[str, str, bool]] = field(default_factory=list)
    ups: list[dict[str, Any]] = field(default_factory=list)
    """The config each ``up`` ran with, as JSON (tests index into it)."""
    stack_outputs: dict[str, object] = field(default_factory=dict)
    workspace: FakeStackWorkspace = field(default_factory=FakeStackWorkspace)
    envs: list[dict[str, str]] = field(default_factory=list)
    """The workspace environment of each ``up`` (what reached the program)."""

    # ---------------------------------------------------------------- scripting

    def fail(self, operation: str, stderr: str = "error: update failed", *, times: int = 1,
             interrupt: bool = False) -> None:
        self.failures.setdefault(operation, []).extend(Failure(stderr, interrupt) for _ in range(times))

    def lock_by(self, user: str, host: str, pid: int) -> None:
        self.lock = (user, host, pid)

    def _maybe_fail(self, operation: str) -> None:
        queue = self.failures.get(operation)
        if queue:
            failure = queue.pop(0)
            if failure.interrupt:
                self.lock = (self.user, self.host, self.pid)
                pending = self.deployment.setdefault("pending_operations", [])
                assert isinstance(pending, list)
                pending.append({"resource": {"urn": "urn:pulumi:x::gantry::k8s:apps/v1:Deployment::web"},
                                "type": "updating"})
            raise cli_error(failure.stderr)

    def _check_lock(self) -> None:
        if self.lock is not None:
            raise cli_error(lock_stderr(self.name, *self.lock))

    # ---------------------------------------------------------------- config

    def get_all_config(self) -> dict[str, ConfigValue]:
        self.calls.append("get_all_config")
        out = {}
        for key, value in self.config.items():
            text = json.dumps(value) if isinstance(value, dict | list) else str(value).lower() \
                if isinstance(value, bool) else str(value)
            out[key] = ConfigValue(text, secret=key in self.secret_keys)
        return out

    def get_config(self, key: str, *, path: bool = False) -> ConfigValue:
        self.calls.append(f"get_config {key}")
        top, sub = _split(key) if path else (key, [])
        node: object = self.config.get(top)
        for part in sub:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise cli_error(f"error: configuration key '{key}' not found for stack '{self.name}'")
        return ConfigValue(json.dumps(node) if isinstance(node, dict | list) else str(node))

    def set_config(self, key: str, value: ConfigValue, *, path: bool = False) -> None:
        self.calls.append(f"set_config {key}")
        self._set_one(key, value, path)

    def _set_one(self, key: str, value: ConfigValue, path: bool) -> None:
        self._maybe_fail("config")
        self.writes.append((key, value.value, path))
        if not path:
            self.config[key] = value.value
            return
        top, sub = _split(key)
        if not sub:
            self.config[top] = _parse_path_value(value.value)
            return
        node = self.config.setdefault(top, {})
        for part in sub[:-1]:
            assert isinstance(node, dict)
            node = node.setdefault(part, {})
        assert isinstance(node, dict)
        node[sub[-1]] = _parse_path_value(value.value)
        if value.secret:
            self.secret_keys.add(top)

    def set_all_config(self, config: Mapping[str, ConfigValue], *, path: bool = False) -> None:
        self.calls.append("set_all_config")
        for key, value in config.items():
            self._set_one(key, value, path)

    def remove_all_config(self, keys: list[str], *, path: bool = False) -> None:
        self.calls.append("remove_all_config")
        for key in keys:
            self._remove_one(key, path)

    def remove_config(self, key: str, *, path: bool = False) -> None:
        self.calls.append(f"remove_config {key}")
        self._remove_one(key, path)

    def _remove_one(self, key: str, path: bool) -> None:
        self.writes.append((key, "<removed>", path))
        top, sub = _split(key) if path else (key, [])
        if not sub:
            self.config.pop(top, None)
            return
        node: object = self.config.get(top)
        for part in sub[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(sub[-1], None)

    # ---------------------------------------------------------------- operations

    def up(self, *, message: str | None = None, on_output: Callable[[str], None] | None = None,
           **_: object) -> object:
        self.calls.append("up")
        self._check_lock()
        pending = self.deployment.get("pending_operations") or []
        assert isinstance(pending, list)
        if on_output is not None:
            on_output(f"Updating ({self.name}):\n")
            on_output(f"    pulumi:pulumi:Stack gantry-{self.name} running {message or ''}\n")
            if pending:
                on_output(f"    warning: Attempting to deploy or update resources with {len(pending)} pending "
                          "operations from previous deployment.\n")
        self._maybe_fail("up")
        # A successful update keeps only the pending creates (the real engine cannot know their IDs).
        self.deployment["pending_operations"] = [op for op in pending if op.get("type") == "creating"]
        snapshot = copy.deepcopy(self.config)
        env = dict(self.workspace.env_vars)
        if self.program is not None:
            previous = program_view(copy.deepcopy(self.stack_outputs))
            assert isinstance(previous, dict)
            try:
                outputs = self.program(ProgramRun(self.name, copy.deepcopy(snapshot), env, previous))
            except Exception as exc:
                # The engine reports a program that raised as a failed update; nothing is recorded.
                raise cli_error(f"error: Program failed with an unhandled exception:\n{type(exc).__name__}: {exc}",
                                code=255) from exc
            self.stack_outputs = outputs
        self.ups.append(snapshot)
        self.envs.append(env)
        self.deployment["resources"] = [{"urn": "urn:pulumi:stack", "outputs": {"config": snapshot}}]
        if on_output is not None:
            on_output("Resources:\n    1 updated\n")
        return object()

    def refresh(self, *, on_output: Callable[[str], None] | None = None, **_: object) -> object:
        self.calls.append("refresh")
        self._check_lock()
        self._maybe_fail("refresh")
        if on_output is not None:
            on_output(f"Refreshing ({self.name}):\n")
        return object()

    def cancel(self) -> None:
        # The file backend's cancel deletes every lock file of the stack and succeeds even when there is none.
        self.calls.append("cancel")
        self.lock = None

    def outputs(self) -> dict[str, OutputValue]:
        self.calls.append("outputs")
        return {k: OutputValue(copy.deepcopy(v), False) for k, v in self.stack_outputs.items()}

    def export_stack(self) -> Deployment:
        self.calls.append("export_stack")
        self._maybe_fail("export")
        return Deployment(version=3, deployment=copy.deepcopy(self.deployment))

    def import_stack(self, state: Deployment) -> None:
        self.calls.append("import_stack")
        if self.lock is not None:
            raise cli_error("error: could not import deployment: " + lock_stderr(self.name, *self.lock)[7:], code=1)
        self.deployment = dict(copy.deepcopy(state.deployment or {}))


@dataclass
class FakeWorkspace:
    """Holds stacks by name; ``factory`` is the ``StackFactory`` the target is given."""

    stacks: dict[str, FakeStack] = field(default_factory=dict)
    selected: list[tuple[str, Path]] = field(default_factory=list)

    def add(self, stack: FakeStack) -> FakeStack:
        self.stacks[stack.name] = stack
        return stack

    def factory(self, name: str, project_dir: Path) -> FakeStack:
        self.selected.append((name, project_dir))
        if name not in self.stacks:
            raise cli_error(not_found_stderr(name))
        return self.stacks[name]


def services_program(run: ProgramRun) -> dict[str, object]:
    """The Gantry program's ``services`` output, by the program's own resolution and typed outputs."""
    from components.k8s.outputs import ServiceOutputs
    from infra.config import ServiceConfig
    from infra.progress import instruction_from_env, previous_services, resolve_services

    services = run.config.get("gantry:services", {})
    assert isinstance(services, dict)
    specs = {name: ServiceConfig.model_validate(block) for name, block in services.items()}
    resolved = resolve_services(specs, previous_services(run.previous), instruction_from_env(run.stack, run.env))
    return {"services": {name: ServiceOutputs.build(spec, desired_image=desired, rollout=progress.rollout).to_json()
                         for name, (spec, desired, progress) in resolved.items()}}
