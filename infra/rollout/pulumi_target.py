"""``PulumiStackTarget``: the rollout ``Target`` that shifts traffic by editing a stack's config and running ``up``.

Built by the rollout factory for ``target: pulumi``. It drives the stack from outside through
``pulumi.automation`` (never importing the program): each change is a path-config write under
``gantry:services.<name>`` followed by ``up``, with the engine's output streamed to a callback.

Pulumi has no rollback (pulumi/pulumi#96), so ``checkpoint`` snapshots the stack's config and its
exported deployment before the first mutation, and ``revert`` restores the service's keys and runs
``up``. When that ``up`` fails, the documented recovery is automated once: cancel a stale lock (one
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
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar, cast

from pulumi import automation as auto

from components.spec import Color, Strategy
from infra.errors import GantryError, InputError
from infra.rollout import automation_errors
from infra.rollout.errors import RollbackFailed, StackLocked
from infra.rollout.faults import point
from infra.rollout.masking import MASK, Masker
from infra.rollout.seams import JSONObject, JSONValue, TrafficState

log = logging.getLogger(__name__)

NAMESPACE = "gantry"
SERVICE_KEYS = ("image", "canaryImage", "canaryWeight", "activeColor", "blueImage", "greenImage")
"""The service keys a rollout may change; a revert restores exactly these."""

OnOutput = Callable[[str], None]
_T = TypeVar("_T")


class StackHandle(Protocol):
    """The part of ``pulumi.automation.Stack`` the target uses (the fake in tests implements the same)."""

    @property
    def name(self) -> str: ...

    def get_all_config(self) -> Mapping[str, auto.ConfigValue]: ...

    def set_all_config(self, config: dict[str, auto.ConfigValue], *, path: bool = False) -> None: ...

    def remove_all_config(self, keys: list[str], *, path: bool = False) -> None: ...

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


def _coerce_int(key: str, value: object) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise InputError(f"{key} must be an integer from 0 to 100, but {value!r} was given") from exc


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

    def _key(self, name: str) -> str:
        return f"{NAMESPACE}:services.{self.service}.{name}"

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

    def _set(self, values: Mapping[str, JSONValue]) -> None:
        # One `pulumi config set-all --path` call, not one CLI run per key.
        config = {self._key(name): auto.ConfigValue(str(value).lower() if isinstance(value, bool) else str(value))
                  for name, value in values.items()}
        if config:
            self._call("config set", partial(self._stack.set_all_config, config, path=True))
            self._point("config-set")

    def _remove(self, names: Iterable[str]) -> None:
        keys = [self._key(name) for name in names]
        if keys:
            self._call("config rm", partial(self._stack.remove_all_config, keys, path=True))
            self._point("config-rm")

    def _up(self, why: str) -> None:
        self._emit(f"pulumi up ({why}) on {self.stack_name}")
        self._call("up", lambda: self._stack.up(message=f"gantry rollout: {why}", on_output=self._emit))
        self._point("up")

    def _point(self, effect: str) -> None:
        # The crash drill's kill points (inert unless a drill armed one): after every single effect.
        point(f"pulumi.{self.strategy.value}.{self._operation}.{effect}")

    # ------------------------------------------------------------------ Target

    def checkpoint(self) -> JSONObject:
        """Full config (secret values redacted) + the service's keys + the exported deployment, also on disk."""
        config = self._call("config", self._stack.get_all_config)
        deployment = self._call("export", self._stack.export_stack)
        block = self.service_config()
        state: dict[str, JSONValue] = {
            "stack": self.stack_name,
            "service": self.service,
            "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": {k: {"value": MASK if v.secret else v.value, "secret": v.secret}
                       for k, v in sorted(config.items())},
            "service_keys": {k: block[k] for k in SERVICE_KEYS if k in block},
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
        if self.strategy is Strategy.CANARY:
            self._set({"canaryImage": image, "canaryWeight": 0})
        else:
            inactive = self._active().other
            self._set({f"{inactive.value}Image": image})
        self._up(f"prepare {self.service} {image}")

    def set_weights(self, canary_weight: int) -> None:
        self._operation = "set-weights"
        if not 0 <= canary_weight <= 100:
            raise InputError(f"canaryWeight must be an integer from 0 to 100, but {canary_weight} was given")
        self._set({"canaryWeight": canary_weight})
        self._up(f"{self.service} canary at {canary_weight}%")

    def switch(self, color: Color) -> None:
        self._operation = "switch"
        self._set({"activeColor": color.value})
        self._up(f"{self.service} active color {color.value}")

    def current(self) -> TrafficState:
        """The live state: the program's ``services.<name>`` output from the last successful ``up``.

        Config alone would lie after a crash between a config write and its ``up``; the config view
        is used only when the program exports nothing for the service yet.
        """
        live = self.outputs()
        return self._traffic(live if "image" in live else self.service_config())

    def verify_serving(self, live: TrafficState) -> list[str]:
        """What the stack really runs: the deployed outputs equal the config (no write left un-``up``-ed,
        which the next ``up`` of anyone would silently deploy) and no operation is left pending."""
        problems: list[str] = []
        deployed = self.outputs()
        if "image" in deployed:
            configured = self._traffic(self.service_config())
            if self._traffic(deployed) != configured:
                problems.append(f"stack config of {self.service} ({configured}) differs from what is deployed "
                                f"({self._traffic(deployed)})")
        state = self._call("export", self._stack.export_stack)
        pending = (state.deployment or {}).get("pending_operations")
        if pending:
            problems.append(f"stack {self.stack_name} has {len(pending)} pending operation(s)")
        return problems

    def _traffic(self, block: Mapping[str, JSONValue]) -> TrafficState:
        image = str(block.get("image", ""))
        if self.strategy is Strategy.CANARY:
            canary = block.get("canaryImage")
            return TrafficState(strategy=self.strategy, stable_image=image,
                                canary_image=None if canary is None else str(canary),
                                canary_weight=_coerce_int("canaryWeight", block.get("canaryWeight", 0)))
        active = self._active(block)
        images = {c: str(block.get(f"{c.value}Image") or image) for c in Color}
        return TrafficState(strategy=self.strategy, stable_image=images[active], active_color=active,
                            preview_image=images[active.other])

    def promote(self) -> None:
        self._operation = "promote"
        block = self.service_config()
        if self.strategy is Strategy.CANARY:
            canary = block.get("canaryImage")
            if canary is None:
                # Already promoted (resume after a crash between up and the journal): nothing to do.
                self._set({"canaryWeight": 0})
            else:
                self._set({"image": str(canary), "canaryWeight": 0})
                self._remove(["canaryImage"])
        else:
            active = self._active(block)
            self._set({"image": str(block.get(f"{active.value}Image") or block.get("image"))})
            # Both colors now run the promoted image, so the old color idles at idleReplicas instead of
            # keeping a full fleet of the previous version (the components run a differing color at full size).
            self._remove([key for key in ("blueImage", "greenImage") if key in block])
        self._up(f"promote {self.service}")

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

    def revert(self, checkpoint: JSONObject) -> None:
        """Restore the checkpointed service keys and ``up``; recover once; else ``RollbackFailed``."""
        self._operation = "revert"
        keys = checkpoint.get("service_keys")
        if not isinstance(keys, Mapping):
            raise RollbackFailed(f"checkpoint for {self.stack_name} has no service_keys; restore it by hand:\n"
                                 + self.recovery_commands(checkpoint))
        try:
            self._restore(keys)
            return
        except GantryError as first:
            self._refuse_foreign_lock(first)
            self._emit(f"rollback up failed: {first}; recovering (cancel, clear pending operations, refresh)")
            log.warning("rollback of %s/%s failed once: %s", self.stack_name, self.service, first)
            self._recover(first)
        try:
            self._restore(keys)
        except GantryError as second:
            self._refuse_foreign_lock(second)
            raise RollbackFailed(
                f"rollback of {self.service} on stack {self.stack_name} failed twice ({second}); "
                f"the checkpoint is {checkpoint.get('file', '(not written)')}. Recover with:\n"
                + self.recovery_commands(checkpoint)) from second

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

    def _active(self, block: Mapping[str, JSONValue] | None = None) -> Color:
        value = (block if block is not None else self.service_config()).get("activeColor", Color.BLUE.value)
        try:
            return Color(str(value))
        except ValueError as exc:
            raise InputError(f"services.{self.service}.activeColor must be blue or green, "
                             f"but {value!r} was given") from exc

    def _restore(self, keys: Mapping[str, JSONValue]) -> None:
        block = self.service_config()
        self._set({k: v for k, v in keys.items() if k in SERVICE_KEYS})
        # Keys the rollout added (canaryImage, a new color image) did not exist at the checkpoint.
        self._remove([k for k in SERVICE_KEYS if k in block and k not in keys])
        self._up(f"roll back {self.service}")

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

    def recovery_commands(self, checkpoint: JSONObject) -> str:
        s = self.stack_name
        keys = checkpoint.get("service_keys")
        kept = dict(keys) if isinstance(keys, Mapping) else {}
        sets = [f"pulumi config set --path --stack {s} {shlex.quote(self._key(k))} {shlex.quote(str(v))}"
                for k, v in kept.items()]
        # Keys the rollout added (absent at the checkpoint) go, so the service block matches it exactly.
        sets += [f"pulumi config rm --path --stack {s} {shlex.quote(self._key(k))}"
                 for k in SERVICE_KEYS if k not in kept]
        lines = [
            f"cd {self.project_dir}",
            f"pulumi cancel --stack {s} --yes   # only if the lock is from this rollout",
            f"pulumi stack export --stack {s} --file {s}.state.json",
            f"# edit {s}.state.json: set \"pending_operations\" to []",
            f"pulumi stack import --stack {s} --file {s}.state.json",
            f"pulumi refresh --stack {s} --yes",
            *sets,
            f"pulumi up --stack {s} --yes",
        ]
        return "\n".join(lines)
