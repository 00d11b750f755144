"""``PulumiStackTarget``: the rollout ``Target`` that shifts traffic by running ``up`` with a rollout step.

Built by the rollout factory for ``target: pulumi``. It drives the stack from outside through
``pulumi.automation`` (never importing the program). It never writes the git-tracked stack file: each
change is one ``up`` whose environment carries the service's new progress (``infra.progress``), and
the program records that progress in the stack's outputs, where the next ``up`` (anyone's) reads it.
The engine's output is streamed to a callback. Outputs are parsed once, into ``ServiceOutputs``.

Pulumi has no rollback (pulumi/pulumi#96), so ``checkpoint`` snapshots the service's progress, the
stack's config and its exported deployment before the first mutation, and ``revert`` runs ``up`` with
the checkpointed progress. When that ``up`` fails, the documented recovery is automated once: cancel a stale lock (one
whose ``pulumi`` process is gone), clear ``pending_operations`` (export, edit, import), refresh,
retry. A live update that is not ours is never cancelled: it raises ``StackLocked`` (exit 3). If the retry fails too,
``RollbackFailed`` names the checkpoint file and the exact commands an operator should run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar, cast

from pulumi import automation as auto
from pydantic import ValidationError

from components.k8s.outputs import Progress, RolloutState, ServiceOutputs
from components.spec import Color, Strategy
from infra.errors import GantryError, InputError
from infra.progress import ENV, Instruction
from infra.rollout import automation_errors
from infra.rollout.errors import RollbackFailed, StackLocked
from infra.rollout.faults import point
from infra.rollout.masking import MASK, Masker
from infra.rollout.seams import JSONObject, JSONValue, TrafficState

log = logging.getLogger(__name__)

NAMESPACE = "gantry"
PROGRESS_KEYS = tuple(f.alias for n, f in Progress.model_fields.items() if n != "rollout" and f.alias)
"""The keys of a service's progress; in a stack file they only seed its first update."""

OnOutput = Callable[[str], None]
_T = TypeVar("_T")


class WorkspaceHandle(Protocol):
    """The part of ``pulumi.automation.Workspace`` the target uses: the environment of the CLI it runs."""

    env_vars: Mapping[str, str]


class StackHandle(Protocol):
    """The part of ``pulumi.automation.Stack`` the target uses (the fake in tests implements the same)."""

    @property
    def name(self) -> str: ...

    @property
    def workspace(self) -> WorkspaceHandle: ...

    def get_all_config(self) -> Mapping[str, auto.ConfigValue]: ...

    def set_all_config(self, config: dict[str, auto.ConfigValue], *, path: bool = False) -> None:
        """Used by ``gantry dr`` (it scales a standby through config); rollouts never write the stack file."""
        ...

    def up(self, *, message: str | None = None, on_output: OnOutput | None = None) -> object: ...

    def refresh(self, *, on_output: OnOutput | None = None) -> object: ...

    def outputs(self) -> Mapping[str, auto.OutputValue]: ...

    def export_stack(self) -> auto.Deployment: ...

    def import_stack(self, state: auto.Deployment) -> None: ...

    def cancel(self) -> None: ...


StackFactory = Callable[[str, Path], StackHandle]


def select_stack(stack_name: str, project_dir: Path) -> StackHandle:
    """The production factory: a LocalWorkspace over the project directory (Pulumi.yaml lives there)."""
    # No cast: mypy checks here that the real Stack satisfies StackHandle, so the fake cannot drift alone.
    stack: StackHandle = auto.select_stack(stack_name=stack_name, work_dir=str(project_dir))
    return stack


def _redact_deployment(value: object) -> object:
    """Replace the plaintext of every secret in an exported deployment: checkpoints are files on disk."""
    if isinstance(value, dict):
        if "4dabf18193072939515e22adb298388d" in value and "plaintext" in value:
            return {**value, "plaintext": json.dumps(MASK)}
        return {k: _redact_deployment(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_deployment(v) for v in value]
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class PulumiStackTarget:
    """Shifts one service's traffic by config writes and ``up`` on one stack."""

    def __init__(self, stack_name: str, service: str, project_dir: Path, strategy: Strategy, *,
                 stack_factory: StackFactory = select_stack, on_output: OnOutput | None = None,
                 checkpoint_dir: Path | None = None, secrets: Iterable[str] = ()) -> None:
        self.stack_name = stack_name
        self.service = service
        self.project_dir = project_dir
        self.strategy = strategy
        self.on_output = on_output
        self.checkpoint_dir = checkpoint_dir or project_dir / ".gantry" / "checkpoints"
        self._secrets = list(secrets)
        self._masker = Masker(self._secrets)
        self._stack = self._call("select", lambda: stack_factory(stack_name, project_dir))
        self._secrets.extend(v.value for v in self._call("config", self._stack.get_all_config).values() if v.secret)
        self._masker = Masker(self._secrets)
        self._operation = "init"
        self.service_config()  # fail now, before any mutation, if the service is not in the stack

    # ------------------------------------------------------------------ plumbing

    def _call(self, operation: str, fn: Callable[[], _T]) -> _T:
        return automation_errors.call(self.stack_name, operation, fn, self._secrets)

    def _emit(self, line: str) -> None:
        if self.on_output is not None:
            self.on_output(self._masker.mask(line.rstrip("\n")))

    def service_config(self) -> dict[str, JSONValue]:
        """The service's block of ``gantry:services`` as the stack holds it now."""
        config = self._call("config", self._stack.get_all_config)
        raw = config.get(f"{NAMESPACE}:services")
        try:
            services = json.loads(raw.value) if raw is not None else {}
        except ValueError as exc:
            raise InputError(f"{NAMESPACE}:services must be a mapping of services, but the stack holds "
                             f"{raw.value[:80]!r}" if raw is not None else "") from exc
        if not isinstance(services, dict) or self.service not in services:
            valid = ", ".join(sorted(services)) if isinstance(services, dict) and services else "none"
            raise InputError(f"service must be one of the stack's services ({valid}), but {self.service!r} "
                             f"was given (stack {self.stack_name})")
        block = services[self.service]
        if not isinstance(block, dict):
            raise InputError(f"services.{self.service} must be a mapping, but {block!r} was given")
        return cast(dict[str, JSONValue], block)

    def _apply(self, progress: Progress, why: str) -> None:
        """One ``up`` whose environment carries the service's new progress; the program records it."""
        step = Instruction(stack=self.stack_name, service=self.service, progress=progress).to_env()
        workspace = self._stack.workspace
        before = workspace.env_vars
        workspace.env_vars = {**before, ENV: step}
        try:
            self._emit(f"pulumi up ({why}) on {self.stack_name}")
            self._call("up", lambda: self._stack.up(message=f"gantry rollout: {why}", on_output=self._emit))
        finally:
            # Only this `up` carries the step: later commands of this workspace must not re-apply it.
            workspace.env_vars = before
        self._point("up")

    def deployed(self) -> ServiceOutputs | None:
        """The service's outputs from the last successful ``up``, typed (None before its first one)."""
        block = self.outputs()
        if not block:
            return None
        try:
            return ServiceOutputs.model_validate(block)
        except ValidationError as exc:
            raise InputError(f"stack output services.{self.service} must match Gantry's service outputs, but "
                             f"{exc.errors()[0]['loc']} does not: {exc.errors()[0]['msg']}") from None

    def progress(self) -> Progress:
        """Where the service stands: its deployed outputs, or before its first ``up`` the stack file's state."""
        deployed = self.deployed()
        if deployed is not None:
            return deployed.progress()
        block = self.service_config()
        seed = {k: block[k] for k in PROGRESS_KEYS if k in block and block[k] is not None}
        try:
            return Progress.model_validate(seed)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(part) for part in err["loc"])
            raise InputError(f"services.{self.service}.{key} must be valid ({err['msg']}), but "
                             f"{seed.get(key)!r} was given") from None

    def _point(self, effect: str) -> None:
        # The crash drill's kill points (inert unless a drill armed one): after every single effect.
        point(f"pulumi.{self.strategy.value}.{self._operation}.{effect}")

    # ------------------------------------------------------------------ Target

    def checkpoint(self) -> JSONObject:
        """The service's progress + full config (secret values redacted) + the exported deployment, also on disk."""
        config = self._call("config", self._stack.get_all_config)
        deployment = self._call("export", self._stack.export_stack)
        state: dict[str, JSONValue] = {
            "stack": self.stack_name,
            "service": self.service,
            "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "progress": cast(JSONValue, self.progress().to_json()),
            "config": {k: {"value": MASK if v.secret else v.value, "secret": v.secret}
                       for k, v in sorted(config.items())},
            "deployment": cast(JSONValue, _redact_deployment(
                {"version": deployment.version, "deployment": deployment.deployment})),
        }
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.checkpoint_dir / f"{self.stack_name}-{self.service}-{stamp}.json"
        # Created 0600 from the start: the deployment names every resource of the stack.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        state["file"] = str(path)
        return state

    def prepare(self, image: str) -> None:
        self._operation = "prepare"
        # The service is held from here on: an outside `pulumi up` keeps this rollout's state.
        staged = self.progress().staged(self.strategy, image).marked(image, RolloutState.PROGRESSING)
        self._apply(staged, f"prepare {self.service} {image}")

    def set_weights(self, canary_weight: int) -> None:
        self._operation = "set-weights"
        if not 0 <= canary_weight <= 100:
            raise InputError(f"canaryWeight must be an integer from 0 to 100, but {canary_weight} was given")
        self._apply(self.progress().with_weight(canary_weight), f"{self.service} canary at {canary_weight}%")

    def switch(self, color: Color) -> None:
        self._operation = "switch"
        self._apply(self.progress().with_active(color), f"{self.service} active color {color.value}")

    def current(self) -> TrafficState:
        """The live state: the program's ``services.<name>`` output from the last successful ``up``.

        Before the service's first ``up`` the stack file's state is all there is.
        """
        p = self.progress()
        if self.strategy is Strategy.CANARY:
            return TrafficState(strategy=self.strategy, stable_image=p.image, canary_image=p.canary_image,
                                canary_weight=p.canary_weight)
        active = p.active_color
        return TrafficState(strategy=self.strategy, stable_image=p.color_image(active), active_color=active,
                            preview_image=p.color_image(active.other))

    def verify_serving(self, live: TrafficState) -> list[str]:
        """What the stack really runs: the rollout let go of the service (else every later ``pulumi up``
        would keep it frozen) and no operation is left pending."""
        problems: list[str] = []
        deployed = self.deployed()
        if deployed is not None and deployed.progress().held:
            problems.append(f"stack {self.stack_name} still shows {self.service} held by a rollout in progress")
        state = self._call("export", self._stack.export_stack)
        pending = (state.deployment or {}).get("pending_operations")
        if pending:
            problems.append(f"stack {self.stack_name} has {len(pending)} pending operation(s)")
        return problems

    def promote(self) -> None:
        self._operation = "promote"
        # Both colors now run the promoted image, so the old color idles at idleReplicas instead of keeping a
        # full fleet of the previous version. Promoting twice (a resume after a crash) changes nothing more.
        self._apply(self.progress().promoted(self.strategy), f"promote {self.service}")

    def outputs(self) -> JSONObject:
        """The stack output ``services.<name>`` after the last ``up`` (empty if the program exports none)."""
        outputs = self._call("outputs", self._stack.outputs)
        services = outputs.get("services")
        value = services.value if services is not None else {}
        block = value.get(self.service, {}) if isinstance(value, dict) else {}
        return cast(JSONObject, block if isinstance(block, dict) else {})

    def stack_output(self, name: str) -> JSONValue | None:
        """One top-level stack output after the last ``up`` (None when the program exports none)."""
        value = self._call("outputs", self._stack.outputs).get(name)
        return cast(JSONValue, value.value) if value is not None else None

    def reverted(self, checkpoint: JSONObject) -> Progress:
        """The progress a revert applies: the checkpoint's stable version at rest, marked rolled back."""
        raw = checkpoint.get("progress", checkpoint.get("service_keys"))  # service_keys: older checkpoints
        if not isinstance(raw, Mapping):
            raise RollbackFailed(f"checkpoint for {self.stack_name} has no progress; restore it by hand:\n"
                                 + self.recovery_commands(checkpoint))
        try:
            saved = Progress.model_validate({k: v for k, v in raw.items() if k in (*PROGRESS_KEYS, "rollout")})
        except ValidationError as exc:
            raise RollbackFailed(f"checkpoint for {self.stack_name} holds no valid progress ({exc.errors()[0]['msg']})"
                                 "; restore it by hand:\n" + self.recovery_commands(checkpoint)) from None
        # The candidate goes too, even one staged before the rollout: a rolled-back version runs no pods.
        rest = saved.at_rest(self.strategy, saved.serving)
        try:
            now = self.progress()
            rolled = now.rollout.image if now.rollout is not None else now.serving
        except GantryError:
            rolled = saved.serving  # the outputs cannot be read: the mark names the version restored
        return rest.marked(rolled, RolloutState.ROLLED_BACK)

    def revert(self, checkpoint: JSONObject) -> None:
        """Run ``up`` with the checkpointed progress; recover once; else ``RollbackFailed``."""
        self._operation = "revert"
        target = self.reverted(checkpoint)
        try:
            self._apply(target, f"roll back {self.service}")
            return
        except GantryError as first:
            self._refuse_foreign_lock(first)
            self._emit(f"rollback up failed: {first}; recovering (cancel, clear pending operations, refresh)")
            log.warning("rollback of %s/%s failed once: %s", self.stack_name, self.service, first)
            self._recover(first)
        try:
            self._apply(target, f"roll back {self.service}")
        except GantryError as second:
            self._refuse_foreign_lock(second)
            raise RollbackFailed(
                f"rollback of {self.service} on stack {self.stack_name} failed twice ({second}); "
                f"the checkpoint is {checkpoint.get('file', '(not written)')}. Recover with:\n"
                + self.recovery_commands(checkpoint, target)) from second

    def _refuse_foreign_lock(self, error: GantryError) -> None:
        """A live update that is not ours holds the stack: stop (exit 3) rather than cancel or retry.

        Cancelling would delete its lock under it (the file backend's cancel removes every lock), and
        any retry would hit the same lock; ``gantry rollout resume`` finishes the rollback later.
        """
        if isinstance(error, StackLocked) and not self._ours(error):
            raise error

    def finalize(self) -> None:
        """Nothing is held between calls: each ``up`` releases Pulumi's own lock when it ends."""

    # ------------------------------------------------------------------ rollback internals

    def _ours(self, error: GantryError) -> bool:
        """May we cancel this lock? Only a stale one: never somebody else's update that is still running.

        The lock names the ``pulumi`` process that took it as user@host (pid). user@host cannot tell
        our interrupted update from an outside ``pulumi up`` by the same user on the same machine
        (the real engine showed this), so the test is liveness: the holder is on this host and its
        pid is gone. Another host's lock, or an unreadable one, is never ours.
        """
        if not isinstance(error, StackLocked):
            # Our own up failed and released its lock; any lock there now belongs to someone else.
            return False
        return error.host == socket.gethostname() and error.pid is not None and not _pid_alive(error.pid)

    def _recover(self, error: GantryError) -> None:
        """The documented recovery (cancel, export, fix, import, refresh), cancelling only a stale lock.

        A lock can also surface only at the import or the refresh (our ``pulumi`` was killed while
        gantry lived on, so the first failure was not a lock error): each is retried once after the
        stale lock is cancelled. Pending operations never block an ``up`` (the engine only warns),
        but a pending create survives both an ``up`` and a non-interactive refresh, so it is cleared
        by hand; the provider's create adopts whatever the interrupted create had already started.
        """
        if isinstance(error, StackLocked):
            self._cancel_stale(error)
        try:
            state = self._call("export", self._stack.export_stack)
            deployment = dict(state.deployment or {})
            if deployment.get("pending_operations"):
                count = len(deployment["pending_operations"])
                deployment["pending_operations"] = []
                self._unlocked("import", lambda: self._stack.import_stack(
                    auto.Deployment(version=state.version, deployment=deployment)))
                self._point("import")
                self._emit(f"cleared {count} pending operation(s)")
            self._unlocked("refresh", lambda: self._stack.refresh(on_output=self._emit))
            self._point("refresh")
        except GantryError as exc:
            # The retry below will fail too and report everything; log why recovery was partial.
            log.warning("recovery of %s incomplete: %s", self.stack_name, exc)

    def _cancel_stale(self, locked: StackLocked) -> None:
        self._refuse_foreign_lock(locked)
        # The file backend's cancel deletes every lock of the stack, so it runs only for a proven-stale one.
        self._call("cancel", self._stack.cancel)
        self._point("cancel")
        self._emit(f"cancelled the stale lock of pid {locked.pid} (that update was interrupted)")

    def _unlocked(self, operation: str, fn: Callable[[], object]) -> None:
        try:
            self._call(operation, fn)
        except StackLocked as locked:
            self._cancel_stale(locked)
            self._call(operation, fn)

    def recovery_commands(self, checkpoint: JSONObject, target: Progress | None = None) -> str:
        s = self.stack_name
        step = ""
        if target is not None:
            step = f"{ENV}={shlex.quote(Instruction(stack=s, service=self.service, progress=target).to_env())} "
        else:
            saved = checkpoint.get("progress", checkpoint.get("service_keys"))
            step = f"# set {ENV} to the rollout step restoring {json.dumps(saved)} for: " if saved else ""
        lines = [
            f"cd {self.project_dir}",
            f"pulumi cancel --stack {s} --yes   # only if the lock is from this rollout",
            f"pulumi stack export --stack {s} --file {s}.state.json",
            f"# edit {s}.state.json: set \"pending_operations\" to []",
            f"pulumi stack import --stack {s} --file {s}.state.json",
            f"pulumi refresh --stack {s} --yes",
            f"{step}pulumi up --stack {s} --yes",
        ]
        return "\n".join(lines)
