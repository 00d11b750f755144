"""Offline renderer: runs any Pulumi Python program under mocks and returns its resource graph.

Called by ``gantry render``, ``gantry check``, the component tests and the rollout tooling. It needs
no Pulumi CLI, no credentials and no network. Parent and dependency information is captured where
registration happens, because ``pulumi.runtime.Mocks`` never sees it (pulumi/pulumi#14421).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import os
import runpy
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from infra.config import ConfigError, SecretValue, read_stack_file
from infra.documents import DocumentError, clip, load_yaml
from infra.errors import InputError, ProgramError

SCHEMA_VERSION = 1
SECRET = "[secret]"
STACK_TYPE = "pulumi:pulumi:Stack"

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


class RenderError(ProgramError):
    """The program raised while rendering; names the project, the stack and the exception."""

    def __init__(self, project: str, stack: str, exc: BaseException) -> None:
        self.project, self.stack, self.cause = project, stack, exc
        detail = " ".join(str(exc).split()) or type(exc).__name__
        super().__init__(f"project {project}, stack {stack}: the program raised {type(exc).__name__}: {detail}")


class ProjectError(InputError):
    """The project directory or its Pulumi.yaml cannot be used."""


@dataclass(frozen=True, slots=True)
class RenderedResource:
    """One registered resource, with inputs in engine (camelCase) form and secrets masked."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: tuple[str, ...]
    property_dependencies: Mapping[str, tuple[str, ...]]
    provider: str | None
    protect: bool
    ignore_changes: tuple[str, ...]
    id: str | None
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]

    def to_json(self) -> dict[str, JSON]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "dependencies": list(self.dependencies),
            "propertyDependencies": {k: list(v) for k, v in sorted(self.property_dependencies.items())},
            "provider": self.provider,
            "protect": self.protect,
            "ignoreChanges": list(self.ignore_changes),
            "id": self.id,
            "inputs": cast(JSON, _jsonable(self.inputs)),
            "outputs": cast(JSON, _jsonable(self.outputs)),
        }


@dataclass(slots=True)
class RenderResult:
    """The resource graph of one program run under mocks."""

    project: str
    stack: str
    resources: list[RenderedResource]
    outputs: dict[str, Any]
    diagnostics: list[str] = field(default_factory=list)
    stack_file: Path | None = None
    program_dir: Path | None = None
    _by_urn: dict[str, RenderedResource] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_urn = {r.urn: r for r in self.resources}

    def of_type(self, type_: str) -> list[RenderedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> RenderedResource:
        """Exactly one resource of this type (and name); an AssertionError-free lookup with a clear error."""
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = ", ".join(r.name for r in self.of_type(type_)) or "none"
            raise LookupError(f"expected one {type_}{f' named {name}' if name else ''}, found {len(found)} ({names})")
        return found[0]

    def by_urn(self, urn: str) -> RenderedResource:
        return self._by_urn[urn]

    def children(self, urn: str) -> list[RenderedResource]:
        return [r for r in self.resources if r.parent == urn]

    def summary(self) -> dict[str, int]:
        return dict(sorted(Counter(r.type for r in self.resources if r.type != STACK_TYPE).items()))

    def to_json(self) -> dict[str, JSON]:
        by_type = self.summary()
        return {
            "schemaVersion": SCHEMA_VERSION,
            "project": self.project,
            "stack": self.stack,
            "stackFile": str(self.stack_file) if self.stack_file else None,
            "resources": [r.to_json() for r in self.resources],
            "outputs": cast(JSON, _jsonable(self.outputs)),
            "summary": {"resources": sum(by_type.values()), "byType": cast(JSON, by_type)},
            "diagnostics": cast(JSON, list(self.diagnostics)),
        }


# --------------------------------------------------------------------------- capture


def _mask(value: Any) -> Any:
    """Replace Pulumi secret wrappers by the placeholder; keep the structure."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, SecretValue):
        return SECRET
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        # The engine's wire format (protobuf Struct) has only doubles; replicas: 3 must not read as 3.0.
        return int(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    # Assets, archives and resource references: their identity is what matters in a graph.
    for attr in ("path", "text", "uri", "urn"):
        inner = getattr(value, attr, None)
        if isinstance(inner, str):
            return f"{type(value).__name__}({inner})"
    return str(value)


def _make_monitor(mocks: Any) -> Any:
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor

    class CapturingMonitor(MockMonitor):
        """A MockMonitor that also records what the plain mocks are never told: parents, deps, options."""

        def __init__(self) -> None:
            super().__init__(mocks)
            self.order: list[str] = []
            self.meta: dict[str, dict[str, Any]] = {}
            self.stack_outputs: dict[str, Any] = {}
            self.stack_urn: str | None = None

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            urn = response.urn
            if request.type == STACK_TYPE:
                self.stack_urn = urn
            inputs = rpc.deserialize_properties(request.object)
            self.order.append(urn)
            self.meta[urn] = {
                "type": request.type,
                "name": request.name,
                "custom": bool(request.custom),
                "parent": request.parent or None,
                "dependencies": tuple(request.dependencies),
                "propertyDependencies": {k: tuple(v.urns) for k, v in request.propertyDependencies.items()},
                "provider": request.provider or None,
                "protect": bool(request.protect),
                "ignoreChanges": tuple(request.ignoreChanges),
                "id": response.id or None,
                "inputs": inputs,
            }
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:
            if request.urn == self.stack_urn:
                self.stack_outputs = rpc.deserialize_properties(request.outputs)
            return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    return CapturingMonitor()


def render_callable(
    program: Callable[[], None],
    *,
    project: str = "test",
    stack: str = "test",
    config: Mapping[str, object] | None = None,
    secret_keys: tuple[str, ...] = (),
) -> RenderResult:
    """Run ``program`` as the body of a Pulumi stack under realistic mocks and return the graph.

    ``config`` maps full keys (``gantry:cluster``) to values; structured values are passed to the
    program as JSON text, the way the engine does.
    """
    ctx = contextvars.Context()
    with _gc_paused():
        return ctx.run(_render_in_context, program, project, stack, dict(config or {}), secret_keys)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a program imports its provider SDKs and registers resources.

    Importing pulumi_aws/pulumi_kubernetes builds thousands of classes; the collector runs hundreds of
    times during that and finds almost nothing (about a fifth of a cold render's CPU). Reference
    counting still frees memory; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _render_in_context(
    program: Callable[[], None], project: str, stack: str, config: dict[str, object], secret_keys: tuple[str, ...]
) -> RenderResult:
    from pulumi.runtime import settings as rt_settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.mocks import MockEngine, MockSettings
    from pulumi.runtime.stack import run_in_stack

    from infra.mocks import RealisticMocks

    engine_config = {k: _engine_value(v) for k, v in config.items()}
    set_all_config(engine_config, list(secret_keys))
    rt_settings.ROOT.set(None)
    monitor = _make_monitor(RealisticMocks(config))
    diagnostics = _DiagnosticsLog()
    rt_settings.configure(
        MockSettings(  # type: ignore[no-untyped-call]
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=MockEngine(diagnostics.logger),
            project=project,
            stack=stack,
            dry_run=False,
            organization="organization",
            callbacks=None,
        )
    )
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run_in_stack(program))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
    registrations = _mocked_state(monitor)
    resources = [
        RenderedResource(
            urn=urn,
            type=m["type"],
            name=m["name"],
            custom=m["custom"],
            parent=m["parent"],
            dependencies=m["dependencies"],
            property_dependencies=m["propertyDependencies"],
            provider=m["provider"],
            protect=m["protect"],
            ignore_changes=m["ignoreChanges"],
            id=m["id"],
            inputs=_mask(m["inputs"]),
            outputs=_mask(registrations.get(urn, {})),
        )
        for urn in sorted(monitor.order, key=lambda u: (monitor.meta[u]["type"] != STACK_TYPE, u))
        for m in (monitor.meta[urn],)
    ]
    return RenderResult(project=project, stack=stack, resources=resources, outputs=_mask(monitor.stack_outputs),
                        diagnostics=diagnostics.messages)


class _DiagnosticsLog(logging.Handler):
    """Collects the program's warnings and errors instead of printing them into JSON output."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.Logger(f"gantry.render.{id(self)}", logging.WARNING)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname.lower()}: {' '.join(record.getMessage().split())}")


def _mocked_state(monitor: Any) -> dict[str, Any]:
    return {urn: reg.state for urn, reg in monitor.resources.items()}


def _engine_value(value: object) -> str:
    if isinstance(value, SecretValue):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --------------------------------------------------------------------------- projects


@dataclass(frozen=True, slots=True)
class Project:
    """A Pulumi project directory as its ``Pulumi.yaml`` describes it."""

    name: str
    root: Path
    main: Path
    config_dir: Path
    defaults: Mapping[str, object]

    @staticmethod
    def load(root: Path) -> Project:
        root = root.resolve()
        manifest = next((root / n for n in ("Pulumi.yaml", "Pulumi.yml") if (root / n).is_file()), None)
        if manifest is None:
            raise ProjectError(f"{root}: no Pulumi.yaml found; pass --project pointing at a Pulumi project")
        try:
            doc = load_yaml(manifest) or {}
        except DocumentError as exc:
            raise ProjectError(str(exc)) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            shown = clip(repr(doc.get("name") if isinstance(doc, dict) else doc))
            raise ProjectError(f"{manifest}: name must be a string, but {shown} was given")
        runtime = doc.get("runtime")
        runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
        if runtime_name != "python":
            raise ProjectError(f"{manifest}: runtime must be python, but {clip(repr(runtime_name))} was given")
        main = root / str(doc.get("main") or ".")
        config_dir = root / str(doc.get("stackConfigDir") or ".")
        return Project(name=doc["name"], root=root, main=main, config_dir=config_dir,
                       defaults=_project_defaults(doc.get("config"), doc["name"]))

    @property
    def entry(self) -> Path:
        return self.main / "__main__.py" if self.main.is_dir() else self.main

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.config_dir.glob("Pulumi.*.yaml"))


def _project_defaults(raw: object, project: str) -> dict[str, object]:
    """Project-level config (``config:`` in Pulumi.yaml): plain values or ``{default: ...}``."""
    out: dict[str, object] = {}
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        full = str(key) if ":" in str(key) else f"{project}:{key}"
        if isinstance(value, dict) and "default" in value:
            out[full] = value["default"]
        elif isinstance(value, dict) and ("type" in value or "description" in value):
            continue
        else:
            out[full] = value
    return out


def stack_config(project: Project, stack: str) -> tuple[dict[str, object], tuple[str, ...], Path]:
    """Merge project defaults and the stack file; ``secure:`` values become placeholders."""
    sf = read_stack_file(stack, project.config_dir)
    config: dict[str, object] = dict(project.defaults)
    secrets: list[str] = []
    for key, value in sf.raw.items():
        full = str(key) if ":" in str(key) else f"{project.name}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SecretValue(full)
            secrets.append(full)
        else:
            config[full] = _secure_nested(value, full, secrets)
    return config, tuple(secrets), sf.path


def _secure_nested(value: object, key: str, secrets: list[str]) -> object:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            if key not in secrets:
                secrets.append(key.split(".", 1)[0])
            return SecretValue(key)
        return {k: _secure_nested(v, key, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_secure_nested(v, key, secrets) for v in value]
    return value


@contextlib.contextmanager
def _program_environment(project: Project) -> Iterator[None]:
    """Run the way the Python language host does: cwd at the program, its folder first on sys.path.

    Modules the program imports from its own tree are dropped afterwards, so two projects with a
    module of the same name never see each other's code.
    """
    before = set(sys.modules)
    old_cwd, old_path = os.getcwd(), list(sys.path)
    program_dir = project.main if project.main.is_dir() else project.main.parent
    sys.path[:0] = [str(program_dir), str(project.root)]
    os.chdir(program_dir)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
        root = str(project.root)
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(root) and "site-packages" not in origin:
                del sys.modules[name]


def render_project(project_dir: Path, stack: str) -> RenderResult:
    """Render ``stack`` of the Pulumi Python project at ``project_dir`` (read via its Pulumi.yaml)."""
    project = Project.load(project_dir)
    config, secrets, stack_file = stack_config(project, stack)
    entry = project.entry
    if not entry.is_file():
        raise ProjectError(f"{project.root}: program entry {entry} does not exist (check 'main' in Pulumi.yaml)")

    def program() -> None:
        runpy.run_path(str(entry), run_name="__main__")

    with _program_environment(project):
        try:
            result = render_callable(program, project=project.name, stack=stack, config=config, secret_keys=secrets)
        except ConfigError:
            raise
        except Exception as exc:
            raise RenderError(project.name, stack, _root_cause(exc)) from exc
    result.stack_file = stack_file
    result.program_dir = project.main
    return result


def _root_cause(exc: BaseException) -> BaseException:
    # Pulumi wraps program failures raised inside applies; the user's exception is what helps.
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None or isinstance(exc, ConfigError):
            break
        if type(exc).__module__.startswith("pulumi") or isinstance(exc, RuntimeError):
            exc = inner
            continue
        break
    return exc
