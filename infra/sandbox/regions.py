"""The sandbox's standby region: its processes, scaling, the region switch in HAProxy, and region faults.

Used by the sandbox lifecycle (``gantry sandbox up --regions 2``, ``gantry sandbox fault --region``) and by
``SandboxDrTarget`` (``gantry dr`` on a ``cloud: local`` stack). The standby runs the primary's stable image
in ``warmSize`` processes behind ``be_<service>_dr``; scaling writes the desired count into the state file
(the sandbox's stand-in for the standby stack's config) and then reconciles processes and HAProxy servers
to it (its ``up``). The switch changes HAProxy's region map live (``set map``) and rewrites the map file.
A region fault freezes every process of a region with SIGSTOP (connections hang, as in a lost region or a
partition) and ``--up`` continues them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from components.spec import Color, Strategy
from infra.config import GantryConfig
from infra.rollout.faults import point
from infra.sandbox import haproxy, procs
from infra.sandbox.procs import SandboxError
from infra.sandbox.state import (
    SandboxState,
    ServiceState,
    Slot,
    StandbyService,
    load,
    locked,
    marker_for,
    require,
    sandbox_dir,
    save,
)

DEFAULT_MAX = 3
REGIONS = ("primary", "standby")


def sizes(cfg: GantryConfig) -> tuple[int, int]:
    """(warm, most) processes per service in the standby: ``gantry:dr`` warmSize and activeSize, else 1 and 3."""
    if cfg.dr is None:
        return 1, DEFAULT_MAX
    return cfg.dr.warm_size, max(cfg.dr.active_size, cfg.dr.warm_size)


def _stable_image(svc: ServiceState) -> str:
    order = ("stable",) if svc.strategy is Strategy.CANARY else (Color.BLUE.value, Color.GREEN.value)
    for name in order:
        slot = svc.slots.get(name)
        if slot is not None:
            return slot.image
    raise SandboxError("a service has no running version to copy into the standby region")


def _process_name(service: str, index: int) -> str:
    return f"app-{service}-dr{index}"


def start_standby(directory: Path, cfg: GantryConfig, services: dict[str, ServiceState]) -> dict[str, StandbyService]:
    """Start ``warm`` standby processes per service (at ``up``, before HAProxy starts)."""
    from infra.sandbox.lifecycle import fault_for, start_version
    from infra.sandbox.state import version_of

    warm, most = sizes(cfg)
    out: dict[str, StandbyService] = {}
    for name, svc in sorted(services.items()):
        image = _stable_image(svc)
        slots: list[Slot | None] = [None] * most
        for i in range(warm):
            slots[i] = start_version(directory, name, image, fault_for(version_of(image), {}, cfg),
                                     name=_process_name(name, i), region="standby", replication_lag=0.5)
        out[name] = StandbyService(slots=slots, desired=warm, image=image)
    return out


def standby_specs(st: SandboxState) -> list[haproxy.StandbySpec]:
    return [haproxy.StandbySpec(name, [s.port if s is not None else None for s in sb.slots])
            for name, sb in sorted(st.standby.items())]


def standby_scrape(st: SandboxState) -> dict[str, tuple[str, int]]:
    return {f"{name}-dr{i}": (name, s.port) for name, sb in st.standby.items()
            for i, s in enumerate(sb.slots) if s is not None}


def _require_regions(project_dir: Path) -> tuple[Path, SandboxState]:
    directory = sandbox_dir(project_dir)
    st = require(directory)
    if st.regions != 2:
        raise SandboxError("the sandbox has one region; start it with: gantry sandbox up --regions 2")
    return directory, st


def scale(project_dir: Path, size: int) -> dict[str, int]:
    """Set the standby's processes per service to ``size`` (a state write), then reconcile to it. Idempotent."""
    from infra.sandbox.lifecycle import admin_socket, fault_for, start_version
    from infra.sandbox.state import version_of

    directory, st = _require_regions(project_dir)
    with locked(directory):
        st = require(directory)
        most = min(len(sb.slots) for sb in st.standby.values()) if st.standby else 0
        if not 0 <= size <= most:
            raise SandboxError(f"size must be within 0..{most} (the standby's servers per service), but {size} "
                               "was given")
        for sb in st.standby.values():
            sb.desired = size
        save(directory, st)
        point("sandbox.dr.scale.desired")
        api = haproxy.RuntimeApi(admin_socket(directory))
        marker = marker_for(directory)
        for name, sb in sorted(st.standby.items()):
            backend = st.standby_backend(name)
            # A spawn a kill interrupted (port recorded, slot not): stop it; the loop below starts it again.
            for port in sb.starting:
                for pid in procs.tagged(marker, "--port", str(port)):
                    procs.stop_pid(pid, marker)
            sb.starting = []
            for i, slot in enumerate(sb.slots):
                server = f"dr{i}"
                if i < sb.desired:
                    if slot is None or not procs.is_ours(slot.pid, marker):
                        port = procs.free_port()
                        sb.starting = [port]
                        save(directory, st)
                        slot = start_version(directory, name, sb.image,
                                             fault_for(version_of(sb.image), st.faults, None), port,
                                             name=_process_name(name, i), region="standby",
                                             replication_lag=st.replication_lag)
                        sb.slots[i], sb.starting = slot, []
                        save(directory, st)
                        point("sandbox.dr.scale.spawned")
                    api.set_addr(backend, server, slot.port)
                    api.set_state(backend, server, "ready")
                    point("sandbox.dr.scale.ready")
                elif slot is not None:
                    api.set_state(backend, server, "maint")
                    point("sandbox.dr.scale.maint")
                    procs.stop_pidfile(directory / f"{_process_name(name, i)}.pid", marker)
                    if procs.is_ours(slot.pid, marker):
                        procs.stop_pid(slot.pid, marker)
                    sb.slots[i] = None
                    save(directory, st)
                    point("sandbox.dr.scale.stopped")
        return {name: sum(1 for s in sb.slots if s is not None) for name, sb in st.standby.items()}


def switch(project_dir: Path, role: str) -> None:
    """Send every service's traffic to ``role``'s backend: live in HAProxy, then in the map file."""
    from infra.sandbox.lifecycle import admin_socket

    if role not in REGIONS:
        raise SandboxError(f"region must be one of {', '.join(REGIONS)}, but {role!r} was given")
    directory, st = _require_regions(project_dir)
    with locked(directory):
        api = haproxy.RuntimeApi(admin_socket(directory))
        names = sorted(st.services)
        for name in names:
            api.set_map(st.region_map, name, st.standby_backend(name) if role == "standby" else st.backend(name))
            point("sandbox.dr.switch.map")
        tmp = st.region_map.with_suffix(".tmp")
        tmp.write_text(haproxy.render_region_map(names, role))
        os.replace(tmp, st.region_map)
        point("sandbox.dr.switch.file")


def active(project_dir: Path) -> str:
    """The region HAProxy routes every service to now (read live); mixed is an error naming each service."""
    from infra.sandbox.lifecycle import admin_socket

    directory, st = _require_regions(project_dir)
    live = haproxy.RuntimeApi(admin_socket(directory)).show_map(st.region_map)
    roles = {name: ("standby" if live.get(name) == st.standby_backend(name) else "primary") for name in st.services}
    if len(set(roles.values())) > 1:
        raise SandboxError("the region map is mixed: " + ", ".join(f"{n} -> {r}" for n, r in sorted(roles.items())))
    return next(iter(roles.values()), "primary")


def region_ports(st: SandboxState, role: str) -> dict[str, list[int]]:
    """The ports of each service's processes in ``role``'s region."""
    if role == "primary":
        return {name: [s.port for s in svc.slots.values() if s is not None] for name, svc in st.services.items()}
    return {name: [s.port for s in sb.slots if s is not None] for name, sb in st.standby.items()}


def _region_pids(st: SandboxState, role: str) -> list[int]:
    if role == "primary":
        return [s.pid for svc in st.services.values() for s in [*svc.slots.values(), *svc.retiring] if s is not None]
    return [s.pid for sb in st.standby.values() for s in sb.slots if s is not None]


def set_region_fault(project_dir: Path, role: str, down: bool) -> list[int]:
    """Freeze (``down``) or continue a region's processes and their supervisors; returns the pids signalled."""
    if role not in REGIONS:
        raise SandboxError(f"--region must be one of {', '.join(REGIONS)}, but {role!r} was given")
    directory, st = _require_regions(project_dir)
    with locked(directory):
        st = require(directory)
        marker = marker_for(directory)
        signalled: list[int] = []
        for pid in _region_pids(st, role):
            if procs.is_ours(pid, marker):
                # Each supervisor leads its own session's group, the demo process inside it.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGSTOP if down else signal.SIGCONT)
                    signalled.append(pid)
        st.regions_down = sorted(set(st.regions_down) | {role}) if down else [r for r in st.regions_down if r != role]
        save(directory, st)
        return signalled


def set_replication_lag(project_dir: Path, seconds: float) -> None:
    """Set the stand-in replication lag the standby processes export (now and when they start)."""
    import json

    import httpx

    directory, st = _require_regions(project_dir)
    with locked(directory):
        st = require(directory)
        st.replication_lag = seconds
        save(directory, st)
        for sb in st.standby.values():
            for slot in sb.slots:
                if slot is not None:
                    httpx.post(f"http://127.0.0.1:{slot.port}/admin/fault",
                               content=json.dumps({"replication_lag_seconds": seconds}), timeout=3.0
                               ).raise_for_status()


def loaded(project_dir: Path) -> SandboxState | None:
    return load(sandbox_dir(project_dir))
