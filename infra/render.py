"""Offline renderer: runs any Pulumi Python program under mocks and returns its resource graph.

Called by ``gantry render``, ``gantry check``, the component tests and the rollout tooling. It needs
no Pulumi CLI, no credentials and no network. ``render_project`` runs the program in the project's own
interpreter (its virtualenv, poetry or uv environment, as ``Pulumi.yaml`` declares) through the render
harness (``infra.harness``, which depends only on ``pulumi``); ``render_callable`` runs a function
in-process. A program that raises still yields every resource it registered: the result is partial
and carries the exception and the line of the user's program that raised it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from infra.config import ConfigError, SecretValue, read_stack_file
from infra.documents import DocumentError, clip, load_yaml
from infra.errors import InputError, ProgramError
from infra.secret_value import unsecure

SCHEMA_VERSION = 1
SECRET = "[secret]"
STACK_TYPE = "pulumi:pulumi:Stack"
HARNESS_DIR = Path(__file__).resolve().parent / "harness"
DEFAULT_TIMEOUT_S = 900.0


def render_timeout() -> float:
    """Seconds a program may run before the render gives up (``GANTRY_RENDER_TIMEOUT``, default 900)."""
    raw = os.environ.get("GANTRY_RENDER_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise InputError(f"GANTRY_RENDER_TIMEOUT must be a number of seconds, but {raw!r} was given") from None
    if not value > 0:
        raise InputError(f"GANTRY_RENDER_TIMEOUT must be > 0, but {raw!r} was given")
    return value

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]

# Loads the harness package by path under its own name, so no Gantry package lands on the program's
# sys.path, then hands over to it. Runs in the project's interpreter, whatever its Python and pulumi.
_BOOTSTRAP = (
    "import importlib.util as u, sys\n"
    "d, req, res = sys.argv[1:4]\n"
    "s = u.spec_from_file_location('gantry_render_harness', d + '/__init__.py', submodule_search_locations=[d])\n"
    "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m)\n"
    "from gantry_render_harness.main import main\n"
    "sys.exit(main(req, res))\n"
)


class RenderError(ProgramError):
    """The program could not be rendered at all; names the project, the stack and the cause."""

    def __init__(self, project: str, stack: str, detail: str) -> None:
        self.project, self.stack = project, stack
        super().__init__(f"project {project}, stack {stack}: {detail}")


class ProjectError(InputError):
    """The project directory or its Pulumi.yaml cannot be used."""


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where the user's program constructed a resource (or raised): a file and a 1-based line."""

    file: str
    """Project-relative POSIX path; absolute when the file lies outside the project."""
    line: int

    def path(self, root: Path | None) -> Path:
        candidate = Path(self.file)
        return candidate if candidate.is_absolute() or root is None else root / candidate

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def to_json(self) -> dict[str, JSON]:
        return {"file": self.file, "line": self.line}

    @staticmethod
    def from_json(raw: object) -> SourceLocation | None:
        if isinstance(raw, dict) and isinstance(raw.get("file"), str) and isinstance(raw.get("line"), int):
            return SourceLocation(raw["file"], raw["line"])
        return None


@dataclass(frozen=True, slots=True)
class ProgramFailure:
    """The exception that stopped the program, with the line of the user's program that raised it."""

    type: str
    message: str
    location: SourceLocation | None
    traceback: str
    missing_module: str | None = None

    def describe(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"the program raised {self.type}: {self.message}{where}"

    def to_json(self) -> dict[str, JSON]:
        return {"type": self.type, "message": self.message,
                "location": self.location.to_json() if self.location else None,
                "missingModule": self.missing_module}


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
    location: SourceLocation | None = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "dependencies": cast(JSON, sorted(self.dependencies)),
            "propertyDependencies": {k: cast(JSON, sorted(v)) for k, v in sorted(self.property_dependencies.items())},
            "provider": self.provider,
            "protect": self.protect,
            "ignoreChanges": list(self.ignore_changes),
            "id": self.id,
            "location": self.location.to_json() if self.location else None,
            "inputs": cast(JSON, self.inputs),
            "outputs": cast(JSON, self.outputs),
        }

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> RenderedResource:
        return RenderedResource(
            urn=raw["urn"], type=raw["type"], name=raw["name"], custom=bool(raw["custom"]), parent=raw["parent"],
            dependencies=tuple(raw["dependencies"]),
            property_dependencies={k: tuple(v) for k, v in raw["propertyDependencies"].items()},
            provider=raw["provider"], protect=bool(raw["protect"]), ignore_changes=tuple(raw["ignoreChanges"]),
            id=raw["id"], inputs=raw["inputs"], outputs=raw["outputs"],
            location=SourceLocation.from_json(raw.get("location")),
        )


@dataclass(slots=True)
class RenderResult:
    """The resource graph of one program run under mocks (partial when the program raised)."""

    project: str
    stack: str
    resources: list[RenderedResource]
    outputs: dict[str, Any]
    diagnostics: list[str] = field(default_factory=list)
    stack_file: Path | None = None
    program_dir: Path | None = None
    error: ProgramFailure | None = None
    project_root: Path | None = None
    interpreter: str | None = None
    pulumi_version: str | None = None
    _by_urn: dict[str, RenderedResource] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_urn = {r.urn: r for r in self.resources}

    @property
    def partial(self) -> bool:
        """The program raised: the graph holds only what it registered before that."""
        return self.error is not None

    def error_message(self) -> str:
        """One line for people: project, stack, exception, location and how much of the graph exists."""
        if self.error is None:
            return ""
        count = sum(1 for r in self.resources if r.type != STACK_TYPE)
        return (f"project {self.project}, stack {self.stack}: {self.error.describe()}; the graph is partial "
                f"({count} resource(s) registered before the error)")

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
            "partial": self.partial,
            "error": self.error.to_json() if self.error else None,
            "resources": [r.to_json() for r in self.resources],
            "outputs": cast(JSON, self.outputs),
            "summary": {"resources": sum(by_type.values()), "byType": cast(JSON, by_type)},
            "diagnostics": cast(JSON, list(self.diagnostics)),
        }


def _result_from_doc(doc: Mapping[str, Any], project: str, stack: str) -> RenderResult:
    raw_error = doc.get("error")
    error = None
    if isinstance(raw_error, dict):
        error = ProgramFailure(type=str(raw_error.get("type")), message=str(raw_error.get("message")),
                               location=SourceLocation.from_json(raw_error.get("location")),
                               traceback=str(raw_error.get("traceback") or ""),
                               missing_module=raw_error.get("missingModule"))
    return RenderResult(project=project, stack=stack,
                        resources=[RenderedResource.from_json(r) for r in doc.get("resources", [])],
                        outputs=dict(doc.get("outputs") or {}), diagnostics=list(doc.get("diagnostics") or []),
                        error=error, interpreter=doc.get("python"), pulumi_version=doc.get("pulumiVersion"))


def render_callable(
    program: Callable[[], None],
    *,
    project: str = "test",
    stack: str = "test",
    config: Mapping[str, object] | None = None,
    secret_keys: tuple[str, ...] = (),
) -> RenderResult:
    """Run ``program`` in-process as the body of a Pulumi stack under realistic mocks and return the graph.

    ``config`` maps full keys (``gantry:cluster``) to values; structured values are passed to the
    program as JSON text, the way the engine does. An exception from the program propagates unchanged.
    """
    from infra.harness.capture import run

    raised: list[BaseException] = []
    doc = run(program, project=project, stack=stack, config=dict(config or {}), secret_keys=secret_keys,
              root=os.getcwd(), is_secret=lambda v: isinstance(v, SecretValue), raised=raised)
    if raised:
        raise raised[0]
    return _result_from_doc(doc, project, stack)


# --------------------------------------------------------------------------- projects


MANIFESTS = ("Pulumi.yaml", "Pulumi.yml")
"""The names Pulumi reads a project's manifest from."""


@dataclass(frozen=True, slots=True)
class Project:
    """A Pulumi project directory as its ``Pulumi.yaml`` describes it."""

    name: str
    root: Path
    main: Path
    config_dir: Path
    defaults: Mapping[str, object]
    runtime_options: Mapping[str, object] = field(default_factory=dict)

    @staticmethod
    def load(root: Path) -> Project:
        root = root.resolve()
        manifest = next((root / n for n in MANIFESTS if (root / n).is_file()), None)
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
        options = runtime.get("options") if isinstance(runtime, dict) else None
        return Project(name=doc["name"], root=root, main=main, config_dir=config_dir,
                       defaults=_project_defaults(doc.get("config"), doc["name"]),
                       runtime_options=dict(options) if isinstance(options, dict) else {})

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
        config[full], secret = unsecure(value, full)
        if secret:
            secrets.append(full)
    return config, tuple(secrets), sf.path


@dataclass(frozen=True, slots=True)
class Interpreter:
    """The Python a project's program runs with, and why that one."""

    python: Path
    source: str
    """``virtualenv .venv``, ``poetry``, ``uv`` or ``current interpreter``."""
    warning: str | None = None

    def __str__(self) -> str:
        return f"{self.python} ({self.source})"


def _venv_python(venv: Path) -> Path:
    # Never resolve symlinks: bin/python of a virtualenv links to the base interpreter, and only the
    # link's location makes Python pick up the environment's site-packages.
    for candidate in (venv / "bin" / "python", venv / "bin" / "python3", venv / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return venv / "bin" / "python"


def project_interpreter(project: Project) -> Interpreter:
    """The interpreter ``pulumi up`` would use: the declared virtualenv, poetry's or uv's environment, or ours.

    A declared environment that does not exist yet falls back to the current interpreter with a
    warning (Pulumi would create it); a package missing there is then reported with its name.
    """
    opts = project.runtime_options
    toolchain = str(opts.get("toolchain") or "pip").lower()
    venv_opt = opts.get("virtualenv")
    current = Path(sys.executable)

    def fallback(why: str, fix: str) -> Interpreter:
        return Interpreter(current, "current interpreter", f"warning: {why}; rendered with {current} instead ({fix})")

    if toolchain == "poetry":
        import shutil

        poetry = shutil.which("poetry")
        if poetry is None:
            return fallback("Pulumi.yaml selects the poetry toolchain, but poetry is not on PATH", "install poetry")
        try:
            proc = subprocess.run([poetry, "env", "info", "--executable"], cwd=project.root, capture_output=True,
                                  text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return fallback(f"poetry env info failed ({type(exc).__name__})", "run poetry install")
        found = proc.stdout.strip().splitlines()[-1:] if proc.returncode == 0 else []
        if not found or not Path(found[0]).exists():
            return fallback("poetry has no environment for this project", f"run poetry install in {project.root}")
        return Interpreter(Path(found[0]), "poetry")
    if toolchain == "uv":
        venv = Path(str(venv_opt or os.environ.get("UV_PROJECT_ENVIRONMENT") or ".venv"))
        venv = venv if venv.is_absolute() else project.root / venv
        python = _venv_python(venv)
        if not python.exists():
            return fallback(f"uv's environment {venv} does not exist", f"run uv sync in {project.root}")
        return Interpreter(python, f"uv {venv.name}")
    if venv_opt:
        venv = Path(str(venv_opt))
        venv = venv if venv.is_absolute() else project.root / venv
        python = _venv_python(venv)
        if not python.exists():
            return fallback(f"Pulumi.yaml names virtualenv {venv_opt}, which does not exist",
                            f"create it: python3 -m venv {venv} && {venv}/bin/pip install -r requirements.txt")
        return Interpreter(python, f"virtualenv {venv_opt}")
    return Interpreter(current, "current interpreter")


def _pip_name(module: str) -> str:
    top = module.split(".", 1)[0]
    return top.replace("_", "-")


def render_project(project_dir: Path, stack: str) -> RenderResult:
    """Render ``stack`` of the Pulumi Python project at ``project_dir`` in the project's own interpreter.

    Raises ``ProjectError``/``ConfigError`` for bad input and ``RenderError`` when the program could not
    run at all; a program that raised returns a partial result whose ``error`` says what and where.
    """
    project = Project.load(project_dir)
    config, secrets, stack_file = stack_config(project, stack)
    entry = project.entry
    if not entry.is_file():
        raise ProjectError(f"{project.root}: program entry {entry} does not exist (check 'main' in Pulumi.yaml)")
    interp = project_interpreter(project)
    program_dir = project.main if project.main.is_dir() else project.main.parent
    request = {
        "project": project.name, "stack": stack, "entry": str(entry), "programDir": str(program_dir),
        "root": str(project.root), "config": {k: v for k, v in config.items()}, "secretKeys": list(secrets),
        "secretPlaceholders": ["[secret:"],
    }
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"  # set and dict orders inside the program stay the same between renders
    env.pop("PYTHONHOME", None)
    timeout = render_timeout()
    with tempfile.TemporaryDirectory(prefix="gantry-render-") as tmp:
        req_path, res_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req_path.write_text(json.dumps(request), encoding="utf-8")
        argv = [str(interp.python), "-c", _BOOTSTRAP, str(HARNESS_DIR), str(req_path), str(res_path)]
        try:
            proc = subprocess.run(argv, cwd=program_dir, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise ProjectError(f"{project.root}: interpreter {interp} cannot be started; recreate the environment"
                               ) from None
        except subprocess.TimeoutExpired:
            raise RenderError(project.name, stack, f"the program did not finish within {timeout:g} s "
                                                   f"(GANTRY_RENDER_TIMEOUT) under {interp}") from None
        if not res_path.is_file():
            tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
            raise RenderError(project.name, stack, f"the render harness exited with code {proc.returncode} under "
                                                   f"{interp} without a result: {tail[0]}")
        doc = json.loads(res_path.read_text(encoding="utf-8"))
    raw_error = doc.get("error")
    if isinstance(raw_error, dict) and raw_error.get("problems"):
        source = raw_error.get("source") or str(stack_file)
        raise ConfigError(str(source), [str(p) for p in raw_error["problems"]])
    result = _result_from_doc(doc, project.name, stack)
    if result.error is not None and result.error.missing_module:
        module = result.error.missing_module
        result.error = ProgramFailure(
            type=result.error.type, location=result.error.location, traceback=result.error.traceback,
            missing_module=module,
            message=(f"the program imports {module}, which is not installed for {interp}; install it there "
                     f"({interp.python} -m pip install {_pip_name(module)}) or declare the project's "
                     "environment in Pulumi.yaml (runtime.options.virtualenv or toolchain)"))
    printed = [line for line in proc.stdout.splitlines() if line.strip()]
    result.diagnostics = [*([interp.warning] if interp.warning else []), *result.diagnostics,
                          *(f"info: {' '.join(line.split())}" for line in printed[:20])]
    result.interpreter = str(interp)
    result.stack_file = stack_file
    result.program_dir = project.main
    result.project_root = project.root
    return result


def render_stacks(project_dir: Path, stacks: Sequence[str], jobs: int | None = None) -> list[RenderResult]:
    """Render several stacks in parallel, one program process per core; errors raise as for one stack."""
    workers = max(1, min(len(stacks), jobs or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: render_project(project_dir, s), stacks))
