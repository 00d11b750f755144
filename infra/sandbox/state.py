"""The sandbox's state file (``.gantry/sandbox/state.json``): ports, pids, which version sits in which slot.

Written by the lifecycle and ``HaproxyTarget`` under an exclusive file lock (a rollout and a
``gantry sandbox fault`` may run at once); read by status, the demo, tests and the factory that
resolves ``metrics.url: sandbox``. HAProxy itself stays the truth for weights.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from components.image import ImageRef, ImageRefError
from components.spec import Strategy
from infra.sandbox.procs import SandboxError
from infra.sandbox.settings import PROMETHEUS_SENTINEL, FaultSpec

SANDBOX_DIR = Path(".gantry") / "sandbox"


class Slot(BaseModel):
    """A running demo version behind one HAProxy server slot."""

    model_config = ConfigDict(extra="forbid")

    version: str
    image: str
    port: int
    pid: int


class ServiceState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Strategy
    frontend_port: int
    slots: dict[str, Slot | None] = Field(default_factory=dict)
    metrics_ports: dict[str, int] = Field(default_factory=dict)
    """Fixed HAProxy port per slot that Prometheus scrapes; it follows the slot's process."""
    starting: list[int] = Field(default_factory=list)
    """Ports of demo processes about to be spawned, recorded before the spawn: a kill between the spawn
    and the slot's record leaves a process that the next operation (or ``down``) finds by its argv."""
    retiring: list[Slot] = Field(default_factory=list)
    """Processes no slot holds any more, recorded before they are stopped; stopped once HAProxy no
    longer routes to them."""


class StandbyService(BaseModel):
    """One service's processes in the sandbox's standby region (``gantry sandbox up --regions 2``)."""

    model_config = ConfigDict(extra="forbid")

    slots: list[Slot | None] = Field(default_factory=list)
    """One entry per HAProxy server of the standby backend (``dr0``..); None: no process, server in maintenance."""
    image: str = ""
    """The demo image the standby runs (the primary's stable one when the sandbox started)."""
    desired: int = 1
    """The standby's replicas: the sandbox's stand-in for ``gantry:services.<name>.replicas`` on the standby
    stack; ``gantry dr`` writes it, then reconciles the processes to it (its ``up``)."""
    starting: list[int] = Field(default_factory=list)
    """Ports of standby processes about to be spawned (a kill in between leaves one that reconcile stops)."""


class SandboxState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: str
    stack: str
    haproxy_pid: int
    haproxy_socket: str
    haproxy_stats_port: int
    prometheus_pid: int
    prometheus_port: int
    services: dict[str, ServiceState] = Field(default_factory=dict)
    faults: dict[str, FaultSpec] = Field(default_factory=dict)
    """Faults set with ``gantry sandbox fault``; they win over the stack's ``gantry:sandbox.faults``."""
    regions: int = 1
    """1, or 2 with a standby region (``gantry sandbox up --regions 2``)."""
    standby: dict[str, StandbyService] = Field(default_factory=dict)
    """The standby region's processes per service (regions 2 only)."""
    regions_down: list[str] = Field(default_factory=list)
    """Regions frozen by ``gantry sandbox fault --region <r> --down`` (their processes are SIGSTOPped)."""
    replication_lag: float = 0.5
    """The stand-in replication lag (seconds) the standby's demo processes export."""

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def marker(self) -> str:
        return marker_for(Path(self.directory))

    @staticmethod
    def backend(service: str) -> str:
        return f"be_{service}"

    @staticmethod
    def standby_backend(service: str) -> str:
        return f"be_{service}_dr"

    @property
    def region_map(self) -> Path:
        """HAProxy's map from service to the backend of the region that serves it (regions 2 only)."""
        return Path(self.directory) / "regions.map"

    def frontend_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.services[service].frontend_port}"


def sandbox_dir(project_dir: Path) -> Path:
    return (project_dir / SANDBOX_DIR).resolve()


def marker_for(directory: Path) -> str:
    """The string every sandbox process carries in its argv (see ``procs.is_ours``)."""
    return f"{directory.resolve()}/"


def state_path(directory: Path) -> Path:
    return directory / "state.json"


def load(directory: Path) -> SandboxState | None:
    path = state_path(directory)
    if not path.is_file():
        return None
    return SandboxState.model_validate_json(path.read_text())


def require(directory: Path) -> SandboxState:
    st = load(directory)
    if st is None:
        raise SandboxError("the sandbox is not up; start it with: gantry sandbox up")
    return st


def save(directory: Path, st: SandboxState) -> None:
    path = state_path(directory)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(st.model_dump_json(indent=1))
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on the sandbox directory for read-modify-write of the state file."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "state.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def resolve_prometheus_url(url: str | None, project_dir: Path) -> str:
    """``metrics.url`` as configured, with the ``sandbox`` sentinel (or no url) replaced by the live sandbox's."""
    if url and url != PROMETHEUS_SENTINEL:
        return url
    return require(sandbox_dir(project_dir)).prometheus_url


def version_of(image: str) -> str:
    """``demo:v3`` -> ``v3``. The sandbox runs only the demo app, so other repositories are refused."""
    try:
        ref = ImageRef.parse(image)
    except ImageRefError:
        ref = None
    # The version names processes and files here: letters, digits, '-' and '.' only.
    if (ref is None or ref.repository.rsplit("/", 1)[-1] != "demo" or ref.tag is None or ref.digest is not None
            or not ref.tag.replace("-", "").replace(".", "").isalnum()):
        raise SandboxError(f"image must be demo:<version> in the sandbox (e.g. demo:v2), but {image!r} was given")
    return ref.tag
