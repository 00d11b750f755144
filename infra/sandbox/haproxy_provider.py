"""HAProxy routing as Pulumi resources: the dynamic provider behind the engine-driven sandbox stack (local-engine).

Built by the Gantry program (``infra.platform``) for every service of a ``cloud: local`` stack whose
rollout target is ``pulumi``; the provider methods run inside ``pulumi up``/``refresh`` (the
``pulumi-python`` dynamic provider process) and act on the running sandbox: its state file under
``.gantry/sandbox/`` and HAProxy's runtime API. Two resource kinds, per service:

- ``SandboxServer`` (one per server slot: ``stable``/``canary`` or ``blue``/``green``): the version
  running behind the slot and the slot's address. Create or an image change starts that demo
  version (or adopts the process already serving it, so an interrupted create can be redone) and
  points the slot, and its metrics port, at it; delete detaches the slot and stops the process.
- ``SandboxWeights`` (one per service): the backend's server weights, applied so that the slot
  gaining traffic is raised first and the backend never has every weight at 0; it also stops a slot
  that runs a version no ``SandboxServer`` wants (what a cleared pending create leaves behind).

Both implement ``read`` from the live sandbox, so ``pulumi refresh`` (the documented recovery after
an interrupted update) records what really serves traffic, and ``diff`` notices a slot whose process
died. ``desired_routing`` is the pure mapping from a service's config to slots and weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.spec import Color, Strategy
from infra.config import ServiceConfig
from infra.sandbox import lifecycle
from infra.sandbox.haproxy import PLACEHOLDER_PORT, RuntimeApi, metrics_backend, slots_for
from infra.sandbox.procs import SandboxError, alive
from infra.sandbox.settings import FaultSpec
from infra.sandbox.state import SandboxState, Slot, load, locked, require, save, version_of

Props = dict[str, Any]  # the dynamic provider protocol's property bags (pulumi.dynamic's own signature)


# --------------------------------------------------------------------------- desired state (pure)


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """One server slot as the config wants it: the image behind it (None: no version) and its weight."""

    image: str | None
    weight: int


def desired_routing(svc: ServiceConfig) -> dict[str, SlotPlan]:
    """Slots and weights for one service; weights always sum to 100 over the slots that run a version.

    Canary: stable carries ``100 - canaryWeight``, the canary slot exists only while ``canaryImage`` is
    set. Blue/green: the active color carries everything; the other color runs a version while its
    own image key is set, or while it still holds the service's image after a switch (the instant
    revert target), and none once both colors run the promoted image.
    """
    if svc.strategy is Strategy.CANARY:
        weight = svc.canary_weight if svc.canary_image else 0
        return {"stable": SlotPlan(svc.image, 100 - weight),
                "canary": SlotPlan(svc.canary_image, weight) if svc.canary_image else SlotPlan(None, 0)}
    active = svc.active_color
    images = {Color.BLUE: svc.blue_image, Color.GREEN: svc.green_image}
    active_image = images[active] or svc.image
    other = images[active.other] or (svc.image if svc.image != active_image else None)
    return {active.value: SlotPlan(active_image, 100), active.other.value: SlotPlan(other, 0)}


# --------------------------------------------------------------------------- provider plumbing


@dataclass(frozen=True, slots=True)
class ServerProps:
    """A ``SandboxServer``'s inputs, validated."""

    sandbox_dir: Path
    service: str
    slot: str
    image: str
    fault: FaultSpec

    @classmethod
    def parse(cls, props: Mapping[str, object]) -> ServerProps:
        fault = props.get("fault")
        return cls(sandbox_dir=Path(str(props["sandboxDir"])), service=str(props["service"]),
                   slot=str(props["slot"]), image=str(props["image"]),
                   fault=FaultSpec.model_validate(fault if isinstance(fault, Mapping) else {}))


def _sandbox(directory: Path, service: str) -> tuple[SandboxState, RuntimeApi]:
    st = require(directory)
    if service not in st.services:
        valid = ", ".join(sorted(st.services)) or "none"
        raise SandboxError(f"service must be one of the running sandbox's services ({valid}), but {service!r} "
                           "was given (restart it with `gantry sandbox up --stack <this stack>`)")
    return st, RuntimeApi(Path(st.haproxy_socket))


def _check_slot(st: SandboxState, service: str, slot: str) -> None:
    valid = slots_for(st.services[service].strategy)
    if slot not in valid:
        raise SandboxError(f"slot must be one of {', '.join(valid)} for {service}, but {slot!r} was given")


def _attach(api: RuntimeApi, service: str, slot: str, port: int) -> None:
    backend = SandboxState.backend(service)
    api.set_addr(backend, slot, port)
    api.set_state(backend, slot, "ready")
    mx = metrics_backend(service, slot)
    api.set_addr(mx, "s", port)
    api.set_state(mx, "s", "ready")


def _detach(api: RuntimeApi, service: str, slot: str) -> None:
    backend = SandboxState.backend(service)
    api.set_weight(backend, slot, 0)
    api.set_state(backend, slot, "maint")
    api.set_addr(backend, slot, PLACEHOLDER_PORT)
    mx = metrics_backend(service, slot)
    api.set_state(mx, "s", "maint")
    api.set_addr(mx, "s", PLACEHOLDER_PORT)


def _server_outs(p: ServerProps, slot: Slot) -> Props:
    return {"sandboxDir": str(p.sandbox_dir), "service": p.service, "slot": p.slot, "image": p.image,
            "fault": p.fault.model_dump(by_alias=True), "version": slot.version, "port": slot.port,
            "pid": slot.pid, "address": f"127.0.0.1:{slot.port}"}


def _effective_fault(st: SandboxState, p: ServerProps) -> FaultSpec:
    # `gantry sandbox fault` wins over the stack's profile, exactly as for HaproxyTarget.
    return st.faults.get(version_of(p.image), p.fault)


def ensure_server(p: ServerProps, restart: bool = False) -> Slot:
    """Make ``p.slot`` serve ``p.image``: adopt the running process, or start one; return the slot.

    Idempotent, so an interrupted create or update is simply run again. The new process is attached
    before the old one stops, so a slot carrying weight never points at nothing.
    """
    with locked(p.sandbox_dir):
        st, api = _sandbox(p.sandbox_dir, p.service)
        _check_slot(st, p.service, p.slot)
        svc = st.services[p.service]
        current = svc.slots.get(p.slot)
        if current is not None and current.image == p.image and alive(current.pid) and not restart:
            _attach(api, p.service, p.slot, current.port)
            return current
        fresh = lifecycle.start_version(p.sandbox_dir, p.service, p.image, _effective_fault(st, p))
        try:
            _attach(api, p.service, p.slot, fresh.port)
        except Exception:
            lifecycle.stop_version(p.sandbox_dir, p.service, fresh)  # "create is transactional"
            raise
        svc.slots[p.slot] = fresh
        save(p.sandbox_dir, st)
        if current is not None and current.pid != fresh.pid:
            lifecycle.stop_version(p.sandbox_dir, p.service, current)
    # Outside the lock: a version Prometheus has not scraped yet has no series for the first analysis.
    lifecycle.wait_scraped(st, fresh.version, timeout=10.0)
    return fresh


def remove_server(p: ServerProps) -> None:
    """Detach the slot (weight 0, maintenance, placeholder address) and stop its process."""
    with locked(p.sandbox_dir):
        st = load(p.sandbox_dir)
        if st is None or p.service not in st.services:
            return  # the sandbox is down: its processes went with it
        api = RuntimeApi(Path(st.haproxy_socket))
        svc = st.services[p.service]
        current = svc.slots.get(p.slot)
        _detach(api, p.service, p.slot)
        if current is not None:
            svc.slots[p.slot] = None
            save(p.sandbox_dir, st)
            lifecycle.stop_version(p.sandbox_dir, p.service, current)


def live_server(p: ServerProps) -> Slot | None:
    """What the slot really runs now (None: nothing, or a dead process)."""
    st = load(p.sandbox_dir)
    if st is None or p.service not in st.services:
        return None
    slot = st.services[p.service].slots.get(p.slot)
    return slot if slot is not None and alive(slot.pid) else None


class ServerProvider(ResourceProvider):
    """CRUD for ``SandboxServer``: one HAProxy server slot and the demo version behind it."""

    serialize_as_secret_always = False  # it captures nothing secret; keep the state readable

    def create(self, props: Props) -> CreateResult:
        p = ServerProps.parse(props)
        slot = ensure_server(p)
        return CreateResult(f"{p.service}/{p.slot}", _server_outs(p, slot))

    def diff(self, _id: str, olds: Props, news: Props) -> DiffResult:
        replaces = [k for k in ("sandboxDir", "service", "slot") if olds.get(k) != news.get(k)]
        o, n = ServerProps.parse(olds), ServerProps.parse(news)
        pid = olds.get("pid")
        dead = not isinstance(pid, int | float) or not alive(int(pid))
        changes = bool(replaces) or o.image != n.image or o.fault != n.fault or dead
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: Props, news: Props) -> UpdateResult:
        o, p = ServerProps.parse(olds), ServerProps.parse(news)
        slot = ensure_server(p, restart=o.fault != p.fault and o.image == p.image)
        return UpdateResult(_server_outs(p, slot))

    def delete(self, _id: str, props: Props) -> None:
        remove_server(ServerProps.parse(props))

    def read(self, id_: str, props: Props) -> ReadResult:
        p = ServerProps.parse(props)
        slot = live_server(p)
        if slot is None:
            return ReadResult("", {})  # gone: refresh drops it from the state, the next up creates it again
        return ReadResult(id_, _server_outs(ServerProps(p.sandbox_dir, p.service, p.slot, slot.image, p.fault), slot))


def apply_weights(sandbox_dir: Path, service: str, weights: Mapping[str, int]) -> dict[str, int]:
    """Set the backend's weights, raising gainers first (never all at 0); return HAProxy's weights after."""
    st, api = _sandbox(sandbox_dir, service)
    for slot in weights:
        _check_slot(st, service, slot)
    backend = SandboxState.backend(service)
    live = api.weights(backend)
    order = sorted(weights, key=lambda s: weights[s] <= live.get(s, 0))
    for slot in order:
        api.set_weight(backend, slot, int(weights[slot]))
    after = api.weights(backend)
    return {slot: after.get(slot, 0) for slot in weights}


def _weights_in(props: Mapping[str, object]) -> dict[str, int]:
    raw = props.get("weights")
    if not isinstance(raw, Mapping):
        raise SandboxError(f"weights must be a mapping of slot to weight, but {raw!r} was given")
    out: dict[str, int] = {}
    for slot, value in raw.items():
        if not isinstance(value, int | float) or not 0 <= value <= 100 or int(value) != value:
            raise SandboxError(f"weights.{slot} must be an integer from 0 to 100, but {value!r} was given")
        out[str(slot)] = int(value)
    return out


def strays(sandbox_dir: Path, service: str, servers: object) -> list[str]:
    """Slots that run a version although no ``SandboxServer`` wants one.

    That happens after an interrupted create: the process was started and attached, but the engine
    never recorded the resource, and clearing the pending create drops it from the state for good.
    """
    st = load(sandbox_dir)
    if st is None or service not in st.services or not isinstance(servers, list | tuple):
        return []
    wanted = {str(s) for s in servers}
    return sorted(name for name, slot in st.services[service].slots.items()
                  if slot is not None and name not in wanted)


class WeightsProvider(ResourceProvider):
    """CRUD for ``SandboxWeights``: one service's HAProxy backend weights (and its stray slots' cleanup)."""

    serialize_as_secret_always = False

    def _apply(self, props: Props) -> Props:
        directory, service = Path(str(props["sandboxDir"])), str(props["service"])
        applied = apply_weights(directory, service, _weights_in(props))
        # Weights first: a stray slot carries no traffic by now, so it can go without a dropped request.
        for slot in strays(directory, service, props.get("servers")):
            remove_server(ServerProps(directory, service, slot, "", FaultSpec()))
        return {"sandboxDir": props["sandboxDir"], "service": props["service"], "weights": applied,
                "servers": props.get("servers")}

    def create(self, props: Props) -> CreateResult:
        return CreateResult(f"{props['service']}/weights", self._apply(props))

    def diff(self, _id: str, olds: Props, news: Props) -> DiffResult:
        replaces = [k for k in ("sandboxDir", "service") if olds.get(k) != news.get(k)]
        stray = strays(Path(str(news["sandboxDir"])), str(news["service"]), news.get("servers"))
        changes = bool(replaces) or _weights_in(olds) != _weights_in(news) or bool(stray)
        return DiffResult(changes=changes, replaces=replaces)

    def update(self, _id: str, _olds: Props, news: Props) -> UpdateResult:
        return UpdateResult(self._apply(news))

    def delete(self, _id: str, _props: Props) -> None:
        """The backend belongs to the sandbox: leaving the stack does not take traffic away from it."""

    def read(self, id_: str, props: Props) -> ReadResult:
        directory, service = Path(str(props["sandboxDir"])), str(props["service"])
        st = load(directory)
        if st is None or service not in st.services:
            return ReadResult("", {})
        live = RuntimeApi(Path(st.haproxy_socket)).weights(SandboxState.backend(service))
        wanted = _weights_in(props)
        return ReadResult(id_, {**props, "weights": {slot: live.get(slot, 0) for slot in wanted}})


# --------------------------------------------------------------------------- resources and the component


class SandboxServer(Resource, module="gantry", name="SandboxServer"):
    """One HAProxy server slot of a sandbox service and the demo version behind it."""

    address: pulumi.Output[str]
    pid: pulumi.Output[int]
    image: pulumi.Output[str]

    def __init__(self, name: str, *, sandbox_dir: str, service: str, slot: str, image: str, fault: FaultSpec,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ServerProvider(), name, {
            "sandboxDir": sandbox_dir, "service": service, "slot": slot, "image": image,
            "fault": fault.model_dump(by_alias=True), "version": None, "port": None, "pid": None, "address": None,
        }, opts)


class SandboxWeights(Resource, module="gantry", name="SandboxWeights"):
    """The HAProxy backend weights of one sandbox service."""

    weights: pulumi.Output[dict[str, int]]

    def __init__(self, name: str, *, sandbox_dir: str, service: str, weights: Mapping[str, int],
                 servers: list[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(WeightsProvider(), name, {"sandboxDir": sandbox_dir, "service": service,
                                                   "weights": dict(weights), "servers": servers}, opts)


def sandbox_dir_of_project() -> str:
    """The sandbox directory of the project being deployed (Pulumi.yaml's directory; cwd under mocks)."""
    root = pulumi.runtime.get_root_directory() if hasattr(pulumi.runtime, "get_root_directory") else None
    from infra.sandbox.state import sandbox_dir

    return str(sandbox_dir(Path(root or os.getcwd())))


class SandboxRouting(pulumi.ComponentResource):
    """A sandbox service's routing: a ``SandboxServer`` per slot that runs a version, and its weights."""

    weights: pulumi.Output[dict[str, int]]
    addresses: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, svc: ServiceConfig, *, sandbox_dir: str, faults: Mapping[str, FaultSpec],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gantry:sandbox:Routing", name, None, opts)
        plan = desired_routing(svc)
        servers: dict[str, SandboxServer] = {}
        for slot, want in plan.items():
            if want.image is None:
                continue
            fault = faults.get(version_of(want.image), FaultSpec())
            servers[slot] = SandboxServer(f"{name}-{slot}", sandbox_dir=sandbox_dir, service=name, slot=slot,
                                          image=want.image, fault=fault, opts=pulumi.ResourceOptions(parent=self))
        # Weights after the servers: a slot is attached to its version before it can take traffic.
        weights = SandboxWeights(f"{name}-weights", sandbox_dir=sandbox_dir, service=name,
                                 weights={slot: want.weight for slot, want in plan.items()},
                                 servers=sorted(servers),
                                 opts=pulumi.ResourceOptions(parent=self, depends_on=list(servers.values())))
        self.weights = weights.weights
        self.addresses = pulumi.Output.all(*(s.address for s in servers.values())).apply(
            lambda addrs: dict(zip(servers, addrs, strict=True)))
        self.register_outputs({"weights": self.weights, "addresses": self.addresses})
