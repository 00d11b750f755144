"""Runs a program under the capturing mock monitor and turns what it registered into a JSON document.

Shared by the child-process entry (``main``) and ``infra.render.render_callable``. Parent and
dependency information is captured where registration happens, because ``pulumi.runtime.Mocks``
never sees it (pulumi/pulumi#14421). A program that raises still yields every resource it registered,
plus an ``error`` naming the exception and the line of the user's program that raised it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .gcpause import gc_paused

SECRET = "[secret]"
UNKNOWN = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"
_ENV_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_HARNESS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_user_file(path: str, root: str) -> bool:
    """A file of the user's program: under the project root and not inside an installed environment."""
    if not path or path.startswith("<"):
        return False
    full = os.path.abspath(path)
    if not (full == root or full.startswith(root.rstrip(os.sep) + os.sep)):
        return False
    rel = full[len(root):]
    return not any(marker in rel for marker in _ENV_MARKERS) and not full.startswith(_HARNESS_DIR)


def _relative(path: str, root: str) -> str:
    full = os.path.abspath(path)
    return Path(os.path.relpath(full, root)).as_posix() if is_user_file(full, root) else full


# --------------------------------------------------------------------------- values


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(child.relative_to(path).as_posix().encode() + b"\0" + _file_digest(child).encode() + b"\0")
    return digest.hexdigest()


def _asset(value: Any) -> dict[str, object] | None:
    """Assets and archives by content hash: never ``<object at 0x...>``, never an absolute path."""
    from pulumi import asset

    kind = type(value).__name__
    try:
        if isinstance(value, asset.StringAsset):
            return {"asset": kind, "sha256": hashlib.sha256(str(value.text).encode()).hexdigest()}
        if isinstance(value, asset.FileAsset | asset.FileArchive):
            path = Path(str(value.path))
            if not path.exists():
                return {"asset" if isinstance(value, asset.FileAsset) else "archive": kind, "missing": str(value.path)}
            sha = _tree_digest(path) if path.is_dir() else _file_digest(path)
            return {"asset" if isinstance(value, asset.FileAsset) else "archive": kind, "sha256": sha,
                    "name": path.name}
        if isinstance(value, asset.RemoteAsset | asset.RemoteArchive):
            key = "asset" if isinstance(value, asset.RemoteAsset) else "archive"
            return {key: kind, "uri": str(value.uri)}
        if isinstance(value, asset.AssetArchive):
            entries = {str(k): _jsonable(v) for k, v in sorted(value.assets.items())}
            sha = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
            return {"archive": kind, "sha256": sha, "entries": entries}
    except OSError as exc:
        return {"asset": kind, "unreadable": type(exc).__name__}
    return None


def _jsonable(value: Any) -> Any:
    """Engine-form values to deterministic JSON: sorted keys, integral doubles as ints, hashed assets."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        # The engine's wire format (protobuf Struct) has only doubles; replicas: 3 must not read as 3.0.
        return int(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        from pulumi.runtime import rpc

        return UNKNOWN if value == rpc.UNKNOWN else value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if type(value).__name__ == "Unknown" and type(value).__module__.startswith("pulumi"):
        return UNKNOWN
    shaped = _asset(value)
    if shaped is not None:
        return shaped
    urn = getattr(value, "urn", None)  # a resource reference
    if isinstance(urn, str):
        return {"resource": urn}
    return f"<{type(value).__name__}>"


def mask(value: Any, is_secret: Callable[[Any], bool], reveal: Callable[[Any], Any] | None = None) -> Any:
    """Replace secret wrappers (and Gantry's placeholders) by ``[secret]``; keep the structure.

    ``reveal`` may return a secret with only its secret parts masked (None: mask it whole).
    """
    if is_secret(value):
        shown = reveal(value) if reveal is not None else None
        return SECRET if shown is None else shown
    if isinstance(value, dict):
        return {k: mask(v, is_secret, reveal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, is_secret, reveal) for v in value]
    return value


def reveal_secret_text(value: Any) -> str | None:
    """A secret ECS ``containerDefinitions`` document with only its secret values masked; else None."""
    from pulumi.runtime import rpc

    from .secret_text import mask_secret_text

    if not rpc.is_rpc_secret(value):
        return None
    plain = rpc.unwrap_rpc_secret(value)
    return mask_secret_text(plain) if isinstance(plain, str) else None


# --------------------------------------------------------------------------- locations


def _location_from_request(request: Any, root: str) -> dict[str, object] | None:
    """The SDK's source position when it is in the user's program, else the first user frame it sent."""
    candidates: list[Any] = []
    pos: Any = getattr(request, "sourcePosition", None)
    if pos is not None and pos.uri:
        candidates.append(pos)
    trace: Any = getattr(request, "stackTrace", None)
    for frame in (trace.frames if trace is not None else ()):
        pc: Any = getattr(frame, "pc", None)
        if pc is not None and pc.uri:
            candidates.append(pc)
    for pc in candidates:
        path = unquote(urlparse(pc.uri).path)
        if is_user_file(path, root):
            return {"file": _relative(path, root), "line": int(pc.line)}
    return None


_USER_FILES: dict[str, bool] = {}


def _location_from_stack(root: str) -> dict[str, object] | None:
    """Fallback for SDKs that send no usable position: the innermost user frame on the current stack."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        user = _USER_FILES.get(filename)
        if user is None:
            user = _USER_FILES[filename] = is_user_file(filename, root)
        if user:
            return {"file": _relative(filename, root), "line": frame.f_lineno}
        frame = frame.f_back  # type: ignore[assignment]
    return None


_FIRST_TRACEBACKS: dict[int, tuple[BaseException, Any]] = {}
"""Tracebacks of exceptions raised inside ``apply`` callbacks, as first raised: the SDK re-raises them from
its own tasks, and by then the frames of the user's callback are no longer on ``__traceback__``."""


def _first_traceback(exc: BaseException) -> Any:
    held = _FIRST_TRACEBACKS.get(id(exc))
    return held[1] if held is not None and held[0] is exc else exc.__traceback__


def record_apply_tracebacks() -> None:
    """Wrap ``Output.apply`` callbacks so an exception keeps the traceback of its first raise."""
    from pulumi import Output

    if getattr(Output.apply, "_gantry_wrapped", False):
        return
    original = Output.apply

    def apply(self: Any, func: Callable[[Any], Any], run_with_unknowns: bool = False) -> Any:
        def recorded(value: Any) -> Any:
            try:
                return func(value)
            except BaseException as exc:
                _FIRST_TRACEBACKS.setdefault(id(exc), (exc, exc.__traceback__))
                raise

        return original(self, recorded, run_with_unknowns)

    apply._gantry_wrapped = True  # type: ignore[attr-defined]
    Output.apply = apply  # type: ignore[method-assign]


def exception_location(exc: BaseException, root: str) -> dict[str, object] | None:
    """The innermost frame of the user's program in ``exc``'s traceback (or its causes')."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(_first_traceback(current))
        for frame in reversed(frames):
            if is_user_file(frame.filename, root):
                return {"file": _relative(frame.filename, root), "line": int(frame.lineno or 0)}
        current = current.__cause__ or current.__context__
    return None


def root_cause(exc: BaseException) -> BaseException:
    """Pulumi wraps failures raised inside applies; the user's own exception is what helps."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        if type(exc).__module__.startswith("pulumi") or type(exc) in (RuntimeError, Exception):
            exc = inner
            continue
        break
    return exc


def user_traceback(exc: BaseException, root: str) -> str:
    """The exception's traceback with the harness's and the SDK's own frames left out."""
    lines: list[str] = []
    for frame in traceback.extract_tb(_first_traceback(exc)):
        if is_user_file(frame.filename, root):
            lines.append(f'  File "{_relative(frame.filename, root)}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line}")
    head = "Traceback (user program frames only):"
    return "\n".join([head, *lines, f"{type(exc).__name__}: {exc}"])


# --------------------------------------------------------------------------- monitor


def make_monitor(mocks: Any, root: str) -> Any:
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.proto import resource_pb2

    fields = resource_pb2.RegisterResourceRequest.DESCRIPTOR.fields_by_name
    has_positions = "sourcePosition" in fields
    # Older SDKs send a position a fixed number of frames up (often inside the provider SDK) and no
    # stack: note the user's frame when each resource is constructed instead.
    has_stacks = "stackTrace" in fields

    class CapturingMonitor(MockMonitor):
        """A MockMonitor that also records what the plain mocks are never told: parents, deps, options."""

        def __init__(self) -> None:
            super().__init__(mocks)
            self.order: list[str] = []
            self.meta: dict[str, dict[str, Any]] = {}
            self.stack_outputs: dict[str, Any] = {}
            self.stack_urn: str | None = None
            self.pending_locations: dict[tuple[str, str], dict[str, object] | None] = {}

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            urn = response.urn
            if request.type == STACK_TYPE:
                self.stack_urn = urn
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            location = _location_from_request(request, root) if has_positions else None
            if location is None:
                location = self.pending_locations.get((request.type, request.name))
            self.order.append(urn)
            self.meta[urn] = {
                "type": request.type,
                "name": request.name,
                "custom": bool(request.custom),
                "parent": request.parent or None,
                "dependencies": sorted(set(request.dependencies)),
                "propertyDependencies": {k: sorted(set(v.urns))
                                         for k, v in sorted(request.propertyDependencies.items())},
                "provider": request.provider or None,
                "protect": bool(request.protect),
                "ignoreChanges": list(request.ignoreChanges),
                "id": response.id or None,
                "inputs": inputs,
                "location": location,
            }
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:
            if request.urn == self.stack_urn:
                self.stack_outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
            return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    monitor = CapturingMonitor()
    if not has_stacks:
        _record_locations_on_construction(monitor, root)
    return monitor


def _record_locations_on_construction(monitor: Any, root: str) -> None:
    """For SDKs without source positions: note the user frame when each resource is constructed."""
    import pulumi

    _RECORDING["monitor"], _RECORDING["root"] = monitor, root
    if getattr(pulumi.Resource.__init__, "_gantry_wrapped", False):
        return
    original = pulumi.Resource.__init__

    def init(self: Any, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        current = _RECORDING.get("monitor")
        if current is not None:
            current.pending_locations[(t, name)] = _location_from_stack(str(_RECORDING["root"]))
        original(self, t, name, *args, **kwargs)

    init._gantry_wrapped = True  # type: ignore[attr-defined]
    pulumi.Resource.__init__ = init  # type: ignore[method-assign]


_RECORDING: dict[str, Any] = {}


# --------------------------------------------------------------------------- run


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


def engine_config_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, object],
    secret_keys: tuple[str, ...] = (),
    root: str,
    is_secret: Callable[[Any], bool] | None = None,
    raised: list[BaseException] | None = None,
    resume_gc: bool = True,
) -> dict[str, Any]:
    """Run ``program`` as the body of a Pulumi stack under mocks; return the render document.

    When the program raises, the document is partial and carries ``error``; the exception itself is
    appended to ``raised`` when given (in-process callers re-raise it). ``resume_gc=False`` leaves the
    cyclic collector off afterwards (the harness process exits right after; a full collection of the
    SDKs' classes would only cost time).
    """
    ctx = contextvars.Context()
    with gc_paused(resume_gc):
        return ctx.run(_run_in_context, program, project, stack, dict(config), secret_keys, os.path.abspath(root),
                       is_secret, raised)


def _run_in_context(program: Callable[[], None], project: str, stack: str, config: dict[str, object],
                    secret_keys: tuple[str, ...], root: str, is_secret: Callable[[Any], bool] | None,
                    raised: list[BaseException] | None) -> dict[str, Any]:
    import pulumi
    from pulumi.runtime import rpc
    from pulumi.runtime import settings as rt_settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.mocks import MockEngine, MockSettings
    from pulumi.runtime.stack import run_in_stack

    from .mocks import RealisticMocks

    record_apply_tracebacks()
    _FIRST_TRACEBACKS.clear()
    set_all_config({k: engine_config_value(v) for k, v in config.items()}, list(secret_keys))
    rt_settings.ROOT.set(None)
    mocks = RealisticMocks(config)
    monitor = make_monitor(mocks, root)
    diagnostics = _DiagnosticsLog()
    settings: dict[str, Any] = {"monitor": monitor, "engine": MockEngine(diagnostics.logger), "project": project,
                                "stack": stack, "dry_run": False, "organization": "organization", "callbacks": None}
    if hasattr(monitor, "GetDeploymentInfo"):
        settings["monitor_features"] = set(monitor.GetDeploymentInfo(None).supportedFeatures)
    rt_settings.configure(MockSettings(**settings))  # type: ignore[no-untyped-call]
    error: dict[str, Any] | None = None
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run_in_stack(program))
    except (Exception, SystemExit) as exc:  # a failing program still yields what it registered
        cause = root_cause(exc)
        if raised is not None:
            raised.append(exc)
        error = {"type": type(cause).__name__, "message": " ".join(str(cause).split()) or type(cause).__name__,
                 "location": exception_location(cause, root) or exception_location(exc, root),
                 "traceback": user_traceback(cause, root),
                 "missingModule": getattr(cause, "name", None) if isinstance(cause, ModuleNotFoundError) else None,
                 # A program's own config validation (Gantry's ConfigError) is bad input, reported line by line.
                 "problems": [str(p) for p in getattr(cause, "problems", None) or []] or None,
                 "source": getattr(cause, "source", None) if isinstance(getattr(cause, "source", None), str) else None}
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)

    secret = is_secret or (lambda v: False)

    def secretish(v: Any) -> bool:
        return bool(rpc.is_rpc_secret(v)) or secret(v)

    state = {urn: reg.state for urn, reg in monitor.resources.items()}
    resources = []
    for urn in sorted(monitor.order, key=lambda u: (monitor.meta[u]["type"] != STACK_TYPE, u)):
        m = monitor.meta[urn]
        resources.append({
            "urn": urn, "type": m["type"], "name": m["name"], "custom": m["custom"], "parent": m["parent"],
            "dependencies": m["dependencies"], "propertyDependencies": m["propertyDependencies"],
            "provider": m["provider"], "protect": m["protect"], "ignoreChanges": m["ignoreChanges"], "id": m["id"],
            "inputs": _jsonable(mask(m["inputs"], secretish, reveal_secret_text)),
            "outputs": _jsonable(mask(state.get(urn, {}), secretish, reveal_secret_text)),
            "location": m["location"],
        })
    return {
        "harness": 1,
        "pulumiVersion": getattr(pulumi, "__version__", None) or _dist_version("pulumi"),
        "project": project,
        "stack": stack,
        "resources": resources,
        "outputs": _jsonable(mask(monitor.stack_outputs, secretish, reveal_secret_text)),
        "diagnostics": [*diagnostics.messages, *mocks.diagnostics],
        "error": error,
    }


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
