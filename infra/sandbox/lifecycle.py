"""Sandbox lifecycle: ``up`` (demo versions, Prometheus, HAProxy on free loopback ports), down, status, fault.

Called by ``gantry sandbox`` and the demo; ``start_version``/``stop_version`` are also used by
``HaproxyTarget``. ``down`` stops what the pid files name (verified against each argv), then sweeps
any process still carrying the sandbox directory in its argv, so a crash never leaves one behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from components.spec import Color, Strategy
from infra.config import GantryConfig, load_stack
from infra.sandbox import haproxy, procs, prometheus
from infra.sandbox.procs import SandboxError
from infra.sandbox.settings import FaultSpec
from infra.sandbox.state import (
    SandboxState,
    ServiceState,
    Slot,
    load,
    locked,
    marker_for,
    require,
    sandbox_dir,
    save,
    state_path,
    version_of,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 15.0
LOG_MAX_BYTES = 1 << 20
"""A version's log is rotated when a process of that version starts and the log holds this much."""
LOG_BACKUPS = 2
"""Rotated copies kept per version log (``.1``, ``.2``)."""
LOG_VERSIONS = 8
"""Per-version logs kept per service beyond the running versions' (oldest removed first)."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The demo app must import from this checkout whatever the caller's working directory is.
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def fault_for(version: str, st_faults: dict[str, FaultSpec], cfg: GantryConfig | None) -> FaultSpec:
    """The effective fault profile: ``gantry sandbox fault`` first, then the stack's, else healthy."""
    if version in st_faults:
        return st_faults[version]
    if cfg is not None and version in cfg.sandbox.faults:
        fault: FaultSpec = cfg.sandbox.faults[version]  # gantry:sandbox is a registered section (Any to config)
        return fault
    return FaultSpec()


SOCKET_PATH_MAX = 100
"""AF_UNIX paths hold at most 107 bytes (Linux), for HAProxy and for our client alike; keep well below."""


def admin_socket(directory: Path) -> Path:
    """HAProxy's admin socket: in the sandbox directory, or under /tmp when that path is too long for AF_UNIX."""
    path = directory / "haproxy.sock"
    if len(str(path)) <= SOCKET_PATH_MAX:
        return path
    import hashlib

    short = Path(tempfile.gettempdir()) / f"gantry-{hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]}"
    short.mkdir(mode=0o700, exist_ok=True)
    os.chmod(short, 0o700)
    return short / "haproxy.sock"


def restarts_file(directory: Path, name: str) -> Path:
    """Where the supervisor of demo process ``name`` (``app-<service>-<version>``) counts its restarts."""
    return directory / f"{name}.restarts"


def start_version(directory: Path, service: str, image: str, fault: FaultSpec, port: int | None = None,
                  *, name: str | None = None, region: str | None = None, replication_lag: float = 0.0) -> Slot:
    """Start one demo version on ``port`` (default: a free one) and wait until it answers ``/ready``.

    Callers that must not leave an orphan after a kill record ``port`` first (``ServiceState.starting``):
    the child carries ``--port`` and the sandbox directory in its argv, so it can be found and stopped.
    """
    version = version_of(image)
    port = port if port is not None else procs.free_port()
    name = name or f"app-{service}-{version}"
    procs.rotate(directory / f"{name}.log", LOG_MAX_BYTES, LOG_BACKUPS)
    # The supervisor restarts a crashed demo and counts it (the sandbox's restartCount); its argv carries the
    # demo's, tag included, so the sandbox recognises and stops it like any of its processes.
    argv = [
        sys.executable, "-m", "infra.sandbox.supervisor", "--restarts-file", str(restarts_file(directory, name)),
        "--", sys.executable, "-m", "infra.sandbox.demoapp", "--version", version, "--port", str(port),
        "--error-rate", str(fault.error_rate), "--latency-ms", str(fault.latency_ms),
        "--crash-after", str(fault.crash_after), "--tag", marker_for(directory),
    ]
    if region is not None:
        argv += ["--region", region, "--replication-lag", str(replication_lag)]
    pid = procs.spawn(argv, directory / f"{name}.log", directory / f"{name}.pid", cwd=REPO_ROOT, env=_env())
    if not procs.wait_port(port, START_TIMEOUT, pid):
        procs.stop_pidfile(directory / f"{name}.pid", marker_for(directory))
        tail = _tail(directory / f"{name}.log")
        raise SandboxError(f"demo {version} did not start on 127.0.0.1:{port}: {tail}")
    return Slot(version=version, image=image, port=port, pid=pid)


def prune_logs(directory: Path, service: str, running: set[str], keep: int = LOG_VERSIONS,
               services: Iterable[str] = ()) -> list[Path]:
    """Remove the logs of all but the ``keep`` newest stopped versions of ``service``; returns what went.

    ``services`` names the sandbox's other services: ``app-web-api-v1.log`` belongs to ``web-api``, never to
    ``web`` (version ``api-v1``), when a service ``web-api`` exists.
    """
    logs: dict[str, list[Path]] = {}
    prefix = f"app-{service}-"
    longer = tuple(f"app-{other}-" for other in services if other != service and other.startswith(f"{service}-"))
    for path in directory.glob(f"{prefix}*.log*"):
        if longer and path.name.startswith(longer):
            continue
        version = path.name[len(prefix):].split(".log", 1)[0]
        if version not in running:
            logs.setdefault(version, []).append(path)
    by_age = sorted(logs, key=lambda v: max(p.stat().st_mtime for p in logs[v]), reverse=True)
    removed: list[Path] = []
    for version in by_age[keep:]:
        for path in logs[version]:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def stop_version(directory: Path, service: str, slot: Slot) -> None:
    """Stop a demo version (verified pid) and forget its pid file."""
    pidfile = directory / f"app-{service}-{slot.version}.pid"
    if procs.read_pid(pidfile) == slot.pid:
        procs.stop_pidfile(pidfile, marker_for(directory))
    else:
        procs.stop_pid(slot.pid, marker_for(directory))


PORT_RACE_ATTEMPTS = 3
"""Starts tried when a listener loses the race for a port picked free (see ``up``)."""


def up(project_dir: Path, stack: str = "local", config_dir: Path | None = None, *, regions: int = 1) -> SandboxState:
    """Start the sandbox for a ``cloud: local`` stack: each service's stable version, Prometheus, HAProxy.

    ``regions=2`` adds a standby region: ``warmSize`` (``gantry:dr``, else 1) more processes per service behind
    their own HAProxy backend, and a region map that ``gantry dr`` switches (see ``infra.sandbox.regions``).
    """
    if regions not in (1, 2):
        raise SandboxError(f"--regions must be 1 or 2, but {regions} was given")
    hap_bin = procs.find_binary("haproxy")
    prom_bin = procs.find_binary("prometheus")
    cfg = load_stack(stack, config_dir or project_dir / "stacks")
    if cfg.cloud.value != "local":
        raise SandboxError(f"stack {stack} must have gantry:cloud local for the sandbox, but "
                           f"{cfg.cloud.value!r} was given")
    directory = sandbox_dir(project_dir)
    with locked(directory):
        existing = load(directory)
        if existing is not None and procs.is_ours(existing.haproxy_pid, existing.marker):
            raise SandboxError("the sandbox is already up; stop it first with: gantry sandbox down")
        # Whatever a crashed run left behind goes first.
        _stop_all(directory)
        for attempt in range(PORT_RACE_ATTEMPTS):
            try:
                st = _start(directory, stack, cfg, hap_bin, prom_bin, regions=regions)
                break
            except SandboxError as exc:
                _stop_all(directory)
                # A free port is only free until another process binds it (parallel test workers do): a
                # listener that lost that race is retried on fresh ports, anything else is reported.
                if "Address already in use" not in str(exc) or attempt == PORT_RACE_ATTEMPTS - 1:
                    raise
            except BaseException:
                _stop_all(directory)
                raise
        save(directory, st)
    return st


def _start(directory: Path, stack: str, cfg: GantryConfig, hap_bin: str, prom_bin: str,
           regions: int = 1) -> SandboxState:
    services: dict[str, ServiceState] = {}
    frontends: list[haproxy.FrontendSpec] = []
    stats_port = procs.free_port()
    for name, svc in sorted(cfg.services.items()):
        fe_port = procs.free_port()
        if svc.strategy is Strategy.CANARY:
            stable = start_version(directory, name, svc.image, fault_for(version_of(svc.image), {}, cfg))
            slots: dict[str, Slot | None] = {"stable": stable, "canary": None}
            weights = {"stable": 100, "canary": 0}
        else:
            active = svc.active_color
            image = (svc.blue_image if active is Color.BLUE else svc.green_image) or svc.image
            running = start_version(directory, name, image, fault_for(version_of(image), {}, cfg))
            slots = {active.value: running, active.other.value: None}
            weights = {active.value: 100, active.other.value: 0}
        order = haproxy.slots_for(svc.strategy)
        mx_ports = {s: procs.free_port() for s in order}
        services[name] = ServiceState(strategy=svc.strategy, frontend_port=fe_port, slots=slots,
                                      metrics_ports=mx_ports)
        server_slots = []
        for s in order:
            slot = slots[s]
            server_slots.append(haproxy.ServerSlot(s, slot.port if slot is not None else None, weights[s]))
        frontends.append(haproxy.FrontendSpec(name, fe_port, server_slots, mx_ports))
    prom_port = procs.free_port()
    st = SandboxState(
        directory=str(directory), stack=stack, haproxy_pid=0, haproxy_socket=str(admin_socket(directory)),
        haproxy_stats_port=stats_port, prometheus_pid=0, prometheus_port=prom_port, services=services,
    )
    scrape = {f"{n}-{s}": (n, p) for n, svc_state in services.items() for s, p in svc_state.metrics_ports.items()}
    standby_specs: list[haproxy.StandbySpec] = []
    if regions == 2:
        from infra.sandbox import regions as region_ops

        st.regions = 2
        st.standby = region_ops.start_standby(directory, cfg, services)
        standby_specs = region_ops.standby_specs(st)
        # The warm processes never move, so Prometheus scrapes them directly (their replication-lag gauge).
        scrape.update(region_ops.standby_scrape(st))
        st.region_map.write_text(haproxy.render_region_map(sorted(services), "primary"))
    exporter = haproxy.has_prometheus_exporter(hap_bin)
    (directory / "prometheus.yml").write_text(prometheus.render_config(scrape, stats_port if exporter else None))
    tsdb = directory / "tsdb"
    # A fresh TSDB per sandbox: series left by an earlier run (same version labels) must not pose as evidence.
    shutil.rmtree(tsdb, ignore_errors=True)
    st.prometheus_pid = procs.spawn(
        [prom_bin, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=2h",
         "--log.level=warn"],
        directory / "prometheus.log", directory / "prometheus.pid", cwd=directory,
    )
    admin_socket(directory).unlink(missing_ok=True)
    (directory / "haproxy.cfg").write_text(
        haproxy.render_config(admin_socket(directory), stats_port, frontends, exporter=exporter,
                              standby=standby_specs, region_map=st.region_map if regions == 2 else None))
    st.haproxy_pid = procs.spawn(
        [hap_bin, "-db", "-f", str(directory / "haproxy.cfg")],
        directory / "haproxy.log", directory / "haproxy.pid", cwd=directory,
    )
    for svc_state in services.values():
        if not procs.wait_port(svc_state.frontend_port, START_TIMEOUT, st.haproxy_pid):
            raise SandboxError(f"haproxy did not start: {_tail(directory / 'haproxy.log')}")
    if not prometheus.wait_ready(st.prometheus_url, 30.0):
        raise SandboxError(f"prometheus did not become ready: {_tail(directory / 'prometheus.log')}")
    return st


def _stop_all(directory: Path) -> list[str]:
    """Stop every process of this sandbox: pid files first (verified), then a sweep for strays."""
    marker = marker_for(directory)
    stopped: list[str] = []
    if directory.is_dir():
        # HAProxy first so no new traffic reaches versions that are about to stop.
        pidfiles = sorted(directory.glob("*.pid"), key=lambda p: (p.name != "haproxy.pid", p.name))
        for pidfile in pidfiles:
            if procs.stop_pidfile(pidfile, marker):
                stopped.append(pidfile.stem)
    for pid in procs.sweep(marker):
        stopped.append(f"stray pid {pid}")
    return stopped


def down(project_dir: Path) -> list[str]:
    """Stop the sandbox. Safe to run twice and after a crash; returns what was stopped."""
    directory = sandbox_dir(project_dir)
    with locked(directory):
        # A region frozen by `sandbox fault --region <r> --down` is thawed first: a stopped process only acts
        # on SIGTERM once continued, and would otherwise wait out the SIGKILL timeout.
        _thaw(marker_for(directory))
        stopped = _stop_all(directory)
        state_path(directory).unlink(missing_ok=True)
        admin_socket(directory).unlink(missing_ok=True)
    return stopped


@dataclass(frozen=True, slots=True)
class PartStatus:
    name: str
    pid: int | None
    running: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Status:
    up: bool
    parts: list[PartStatus] = field(default_factory=list)
    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    prometheus_url: str | None = None
    frontends: dict[str, str] = field(default_factory=dict)


def status(project_dir: Path) -> Status:
    directory = sandbox_dir(project_dir)
    st = load(directory)
    if st is None:
        return Status(up=False)
    marker = st.marker
    parts = [
        PartStatus("haproxy", st.haproxy_pid, procs.is_ours(st.haproxy_pid, marker), f"socket {st.haproxy_socket}"),
        PartStatus("prometheus", st.prometheus_pid, procs.is_ours(st.prometheus_pid, marker), st.prometheus_url),
    ]
    for svc_name, svc in st.services.items():
        for slot_name, slot in svc.slots.items():
            if slot is not None:
                parts.append(PartStatus(
                    f"{svc_name}/{slot_name}", slot.pid, procs.is_ours(slot.pid, marker),
                    f"{slot.image} on 127.0.0.1:{slot.port}",
                ))
    for svc_name, sb in st.standby.items():
        for i, slot in enumerate(sb.slots):
            if slot is not None:
                parts.append(PartStatus(f"{svc_name}/dr{i}", slot.pid, procs.is_ours(slot.pid, marker),
                                        f"standby region: {slot.image} on 127.0.0.1:{slot.port}"))
    weights: dict[str, dict[str, int]] = {}
    if parts[0].running:
        api = haproxy.RuntimeApi(Path(st.haproxy_socket))
        for svc_name in st.services:
            weights[svc_name] = api.weights(st.backend(svc_name))
    return Status(
        up=all(p.running for p in parts), parts=parts, weights=weights, prometheus_url=st.prometheus_url,
        frontends={name: st.frontend_url(name) for name in st.services},
    )


def set_fault(project_dir: Path, version: str, fault: FaultSpec) -> bool:
    """Record a version's fault profile, and apply it live to any running process of that version."""
    directory = sandbox_dir(project_dir)
    applied = False
    with locked(directory):
        st = require(directory)
        st.faults[version] = fault
        save(directory, st)
        for svc in st.services.values():
            for slot in svc.slots.values():
                if slot is not None and slot.version == version:
                    resp = httpx.post(f"http://127.0.0.1:{slot.port}/admin/fault",
                                      content=json.dumps(fault.model_dump()), timeout=3.0)
                    resp.raise_for_status()
                    applied = True
    return applied


def wait_scraped(st: SandboxState, version: str, timeout: float = 10.0) -> bool:
    """Wait until Prometheus has scraped ``version`` (so a rate() over it has data)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if version in prometheus.scraped_versions(st.prometheus_url):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _thaw(marker: str) -> list[int]:
    """SIGCONT every process of this sandbox (a no-op for running ones)."""
    import signal

    thawed: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and procs.is_ours(int(entry.name), marker):
            try:
                os.kill(int(entry.name), signal.SIGCONT)
                thawed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return thawed


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
