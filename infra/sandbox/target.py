"""``HaproxyTarget``: the rollout engine's Target seam over the local sandbox (HAProxy runtime API + demo processes).

Built by ``infra.rollout.factory`` when a stack sets ``gantry:rollout.target: haproxy``, as
``HaproxyTarget(project_dir, config, service)``: ``project_dir`` holds ``.gantry/sandbox/`` (the
sandbox must be up), ``config`` is the stack's ``GantryConfig`` (fault profiles), ``service`` a
service of that stack. ``prepare`` starts the new version's process; ``set_weights``/``switch`` are
``set weight`` commands on the admin socket (no reload); ``current`` reads HAProxy back, so the
journal can be checked against what really serves traffic; ``verify_serving`` samples real requests
through HAProxy, which is what users see.

Every operation is ordered so that a SIGKILL between any two of its effects leaves a state the next
operation (``revert`` on resume) repairs: make before break. A server is given weight only after its
address names a process that already serves; a process is recorded (``starting``) before it is
spawned and (``retiring``) before it is stopped, and is stopped only once no server routes to it;
each operation re-applies the slots' addresses from the state file instead of trusting HAProxy.
Each effect is followed by a named fault point (``infra.rollout.faults``) for the crash drill.
"""

from __future__ import annotations

import contextlib
import http.client
from pathlib import Path

from components.spec import Color, Strategy
from infra.config import GantryConfig
from infra.rollout.faults import point
from infra.rollout.metrics.prometheus import PrometheusProvider, PrometheusTraffic
from infra.rollout.seams import JSONObject, MetricQuery, MetricsProvider, Track, TrafficState
from infra.sandbox import lifecycle
from infra.sandbox.haproxy import PLACEHOLDER_PORT, RuntimeApi, metrics_backend
from infra.sandbox.procs import SandboxError, alive, free_port, reap, stop_pid, tagged
from infra.sandbox.state import SandboxState, ServiceState, Slot, locked, require, sandbox_dir, save, version_of


def sandbox_traffic(provider: PrometheusProvider, service: str | None, image: str,
                    baseline_image: str) -> PrometheusTraffic:
    """Per-track traffic for a sandbox service, as the rollout factory feeds it to the analysis.

    The demo app labels ``http_requests_total`` by ``version`` and ``status``; Prometheus adds the
    ``service`` label from the scrape target, which keeps two services running the same version apart.
    """
    return PrometheusTraffic(
        provider,
        versions={Track.CANARY: version_of(image), Track.BASELINE: version_of(baseline_image)},
        status_label="status",
        extra_selector=f'service="{service}"' if service else "",
    )


class HaproxyTarget:
    """Shifts one sandbox service's traffic between two server slots of its HAProxy backend."""

    SAMPLES = 20
    """Requests ``verify_serving`` sends through the frontend."""

    def __init__(self, project_dir: Path, config: GantryConfig | None, service: str,
                 wait_for_scrape: bool = True) -> None:
        self.directory = sandbox_dir(project_dir)
        self.config = config
        self.service = service
        self.wait_for_scrape = wait_for_scrape
        st = require(self.directory)
        if service not in st.services:
            valid = ", ".join(sorted(st.services)) or "none"
            raise SandboxError(f"service must be one of the sandbox's services ({valid}), but {service!r} was given")
        self.strategy = st.services[service].strategy
        self.backend = SandboxState.backend(service)
        self.api = RuntimeApi(Path(st.haproxy_socket))

    # ------------------------------------------------------------------ helpers

    def _svc(self, st: SandboxState) -> ServiceState:
        return st.services[self.service]

    def _weights(self) -> dict[str, int]:
        return self.api.weights(self.backend)

    def _point(self, operation: str, effect: str) -> None:
        point(f"haproxy.{self.strategy.value}.{operation}.{effect}")

    def _active_color(self, svc: ServiceState) -> Color:
        weights = self._weights()
        # The active color is the one taking traffic; the state file only breaks a 0/0 tie.
        for color in (Color.BLUE, Color.GREEN):
            if weights.get(color.value, 0) > 0:
                return color
        return Color.BLUE if svc.slots.get("blue") is not None else Color.GREEN

    def _weight(self, op: str, slot_name: str, weight: int) -> None:
        self.api.set_weight(self.backend, slot_name, weight)
        self._point(op, f"weight-{slot_name}-{weight}")

    def _attach(self, op: str, slot_name: str, slot: Slot, weight: int) -> None:
        # Address first, weight last: a server never takes traffic while it names a stopped process.
        self.api.set_addr(self.backend, slot_name, slot.port)
        self._point(op, f"addr-{slot_name}")
        self.api.set_state(self.backend, slot_name, "ready")
        self._point(op, f"ready-{slot_name}")
        mx = metrics_backend(self.service, slot_name)
        self.api.set_addr(mx, "s", slot.port)
        self.api.set_state(mx, "s", "ready")
        self._point(op, f"metrics-{slot_name}")
        self._weight(op, slot_name, weight)

    def _detach(self, op: str, slot_name: str) -> None:
        # Weight first: the server stops taking traffic before its address goes.
        self._weight(op, slot_name, 0)
        self.api.set_state(self.backend, slot_name, "maint")
        self._point(op, f"maint-{slot_name}")
        self.api.set_addr(self.backend, slot_name, PLACEHOLDER_PORT)
        self._point(op, f"unaddr-{slot_name}")
        mx = metrics_backend(self.service, slot_name)
        self.api.set_state(mx, "s", "maint")
        self.api.set_addr(mx, "s", PLACEHOLDER_PORT)
        self._point(op, f"unmetrics-{slot_name}")

    def _routed_ports(self) -> set[int]:
        """Ports HAProxy's servers for this service name now (any weight, any state)."""
        ports: set[int] = set()
        prefixes = (self.backend, f"mx_{self.service}_")
        for row in self.api.show_stat():
            if row.backend == self.backend or row.backend.startswith(prefixes[1]):
                _, _, port = row.addr.rpartition(":")
                if port.isdigit():
                    ports.add(int(port))
        return ports

    def _save(self, op: str, st: SandboxState, what: str) -> None:
        save(self.directory, st)
        self._point(op, f"state-{what}")

    def _retire(self, op: str, st: SandboxState, slot_name: str) -> None:
        """Move a slot's process to ``retiring`` (stopped by ``_reap`` once nothing routes to it)."""
        svc = self._svc(st)
        slot = svc.slots.get(slot_name)
        if slot is not None:
            svc.retiring.append(slot)
        svc.slots[slot_name] = None
        self._save(op, st, f"retire-{slot_name}")

    def _reap(self, op: str, st: SandboxState) -> None:
        """Stop retiring and half-started processes no slot holds and no server routes to; forget them."""
        svc = self._svc(st)
        if not svc.retiring and not svc.starting:
            return
        held = {s.port for s in svc.slots.values() if s is not None}
        routed = self._routed_ports()
        marker = st.marker
        for port in list(svc.starting):
            if port in held:
                svc.starting.remove(port)
            elif port not in routed:
                for pid in tagged(marker, "--port", str(port)):
                    stop_pid(pid, marker)
                svc.starting.remove(port)
        for slot in list(svc.retiring):
            if slot.port in held and any(s is not None and s.pid == slot.pid for s in svc.slots.values()):
                svc.retiring.remove(slot)  # taken back into a slot by a revert
            elif slot.port not in routed:
                lifecycle.stop_version(self.directory, self.service, slot)
                self._point(op, "stopped")
                svc.retiring.remove(slot)
        self._save(op, st, "reaped")

    def _start(self, op: str, st: SandboxState, image: str) -> Slot:
        """Start ``image``; its port is recorded before the spawn, so a kill right after it leaves no orphan."""
        svc = self._svc(st)
        port = free_port()
        svc.starting.append(port)
        self._save(op, st, "starting")
        version = version_of(image)
        slot = lifecycle.start_version(self.directory, self.service, image,
                                       lifecycle.fault_for(version, st.faults, self.config), port=port)
        self._point(op, "spawned")
        return slot

    def _hold(self, op: str, st: SandboxState, slot_name: str, slot: Slot) -> None:
        """Record ``slot`` in ``slot_name`` (the former holder retires) and forget its start record."""
        svc = self._svc(st)
        old = svc.slots.get(slot_name)
        if old is not None and old.pid != slot.pid:
            svc.retiring.append(old)
        svc.retiring = [r for r in svc.retiring if r.pid != slot.pid]
        svc.slots[slot_name] = slot
        if slot.port in svc.starting:
            svc.starting.remove(slot.port)
        self._save(op, st, f"hold-{slot_name}")
        running = {s.version for s in svc.slots.values() if s is not None} | {r.version for r in svc.retiring}
        lifecycle.prune_logs(self.directory, self.service, running, services=st.services)

    def _serving(self, op: str, st: SandboxState, slot_name: str, image: str) -> Slot:
        """A live process of ``image`` for ``slot_name``: the slot's own, a retiring one, or a new one."""
        svc = self._svc(st)
        held = svc.slots.get(slot_name)
        if self._running(held, image):
            assert held is not None
            return held
        spare = next((r for r in svc.retiring if self._running(r, image)), None)
        slot = spare if spare is not None else self._start(op, st, image)
        self._hold(op, st, slot_name, slot)
        return slot

    def _running(self, slot: Slot | None, image: str) -> bool:
        return slot is not None and slot.image == image and alive(slot.pid)

    def _await_scrape(self, st: SandboxState, image: str) -> None:
        # A canary that Prometheus has not scraped yet has no series: analysis would only see "no data".
        if self.wait_for_scrape:
            lifecycle.wait_scraped(st, version_of(image), timeout=10.0)

    # ------------------------------------------------------------------ Target

    def checkpoint(self) -> JSONObject:
        st = require(self.directory)
        svc = self._svc(st)
        if self.strategy is Strategy.CANARY:
            stable = svc.slots.get("stable")
            return {"service": self.service, "strategy": "canary",
                    "stable_image": stable.image if stable else None}
        active = self._active_color(svc)
        slot = svc.slots.get(active.value)
        return {"service": self.service, "strategy": "bluegreen", "active_color": active.value,
                "active_image": slot.image if slot else None}

    def prepare(self, image: str) -> None:
        op = "prepare"
        with locked(self.directory):
            st = require(self.directory)
            self._reap(op, st)  # whatever an interrupted operation left behind goes first
            svc = self._svc(st)
            if self.strategy is Strategy.CANARY:
                slot_name = "canary"
                stable = svc.slots.get("stable")
                if stable is not None and stable.image == image:
                    raise SandboxError(f"image must differ from the stable one, but {image!r} was given")
            else:
                slot_name = self._active_color(svc).other.value
            current = svc.slots.get(slot_name)
            if current is not None and not self._running(current, image):
                # Another version sits in the slot: no traffic, then out of HAProxy, then stopped.
                self._detach(op, slot_name)
                self._retire(op, st, slot_name)
                self._reap(op, st)
            slot = self._serving(op, st, slot_name, image)
            self._attach(op, slot_name, slot, 0)
        self._await_scrape(st, image)

    def set_weights(self, canary_weight: int) -> None:
        if self.strategy is not Strategy.CANARY:
            raise SandboxError(f"set_weights needs a canary service, but {self.service} is {self.strategy.value}")
        if not 0 <= canary_weight <= 100:
            raise ValueError(f"canary_weight must be within 0..100, but {canary_weight} was given")
        st = require(self.directory)
        if self._svc(st).slots.get("canary") is None and canary_weight > 0:
            raise SandboxError("the canary must be prepared before it takes traffic")
        op = "set-weights"
        # Raise the side gaining traffic first, so the backend never has all weights at 0.
        if canary_weight >= self._weights().get("canary", 0):
            self._weight(op, "canary", canary_weight)
            self._weight(op, "stable", 100 - canary_weight)
        else:
            self._weight(op, "stable", 100 - canary_weight)
            self._weight(op, "canary", canary_weight)

    def switch(self, color: Color) -> None:
        if self.strategy is not Strategy.BLUEGREEN:
            raise SandboxError(f"switch needs a blue/green service, but {self.service} is {self.strategy.value}")
        with locked(self.directory):
            st = require(self.directory)
            slot = self._svc(st).slots.get(color.value)
            if slot is None or not alive(slot.pid):
                raise SandboxError(f"color {color.value} has no version running; prepare it first")
            # Re-applied from the state file: the color's server names its process before it takes traffic.
            self._attach("switch", color.value, slot, 100)
            self._weight("switch", color.other.value, 0)

    def restart_counter(self, image: str) -> tuple[MetricsProvider, MetricQuery]:
        """Where the restarts gate reads ``image``'s restarts: its demo process's supervisor count."""
        from infra.sandbox.restarts import SandboxRestarts

        name = f"app-{self.service}-{version_of(image)}"
        return SandboxRestarts(self.directory), MetricQuery(name="restarts", expr=name)

    def current(self) -> TrafficState:
        st = require(self.directory)
        svc = self._svc(st)
        weights = self._weights()
        if self.strategy is Strategy.CANARY:
            stable, canary = svc.slots.get("stable"), svc.slots.get("canary")
            return TrafficState(
                strategy=Strategy.CANARY,
                stable_image=stable.image if stable else "",
                canary_image=canary.image if canary else None,
                canary_weight=weights.get("canary", 0) if canary else 0,
            )
        active = self._active_color(svc)
        act, prev = svc.slots.get(active.value), svc.slots.get(active.other.value)
        return TrafficState(
            strategy=Strategy.BLUEGREEN, stable_image=act.image if act else "",
            active_color=active, preview_image=prev.image if prev else None,
        )

    def promote(self) -> None:
        op = "promote"
        with locked(self.directory):
            st = require(self.directory)
            svc = self._svc(st)
            if self.strategy is Strategy.CANARY:
                canary = svc.slots.get("canary")
                if canary is not None:
                    # All traffic on the canary's own server first, then the stable slot takes over its
                    # process (the old stable retires), then the stable server names it and gets the weight.
                    self._weight(op, "canary", 100)
                    self._weight(op, "stable", 0)
                    mx = metrics_backend(self.service, "canary")
                    self.api.set_state(mx, "s", "maint")  # one scrape path per process: no double counting
                    self._point(op, "unmetrics-canary")
                    svc.slots["canary"] = None
                    self._hold(op, st, "stable", canary)
                stable = svc.slots.get("stable")
                if stable is None or not alive(stable.pid):
                    raise SandboxError("the stable slot has no running version to promote")
                # Re-applied every time, so a promote after a crash converges on the same end state.
                self._attach(op, "stable", stable, 100)
                self._detach(op, "canary")
            else:
                active = self._active_color(svc)
                slot = svc.slots.get(active.value)
                if slot is None or not alive(slot.pid):
                    raise SandboxError(f"color {active.value} has no version running to promote")
                self._attach(op, active.value, slot, 100)
                self._detach(op, active.other.value)
                if svc.slots.get(active.other.value) is not None:
                    self._retire(op, st, active.other.value)
            self._reap(op, st)

    def revert(self, checkpoint: JSONObject) -> None:
        op = "revert"
        with locked(self.directory):
            st = require(self.directory)
            svc = self._svc(st)
            if self.strategy is Strategy.CANARY:
                keep, drop = "stable", "canary"
                want = checkpoint.get("stable_image")
            else:
                color = Color(str(checkpoint.get("active_color", "blue")))
                keep, drop = color.value, color.other.value
                want = checkpoint.get("active_image")
            if not isinstance(want, str):
                held = svc.slots.get(keep)
                if held is None:
                    raise SandboxError(f"checkpoint has no image to restore for {keep}")
                want = held.image
            # The checkpointed version serves first (its own process, a retiring one, or a new one);
            # only then does its server get the traffic back, and only then does the other side go.
            slot = self._serving(op, st, keep, want)
            self._attach(op, keep, slot, 100)
            self._detach(op, drop)
            if svc.slots.get(drop) is not None:
                self._retire(op, st, drop)
            self._reap(op, st)

    def verify_serving(self, live: TrafficState, samples: int | None = None) -> list[str]:
        """What users see: HAProxy's servers against the state file, then real requests through the frontend.

        The serving server must name the process of ``live.stable_image`` at weight 100, the other must
        carry no weight, no demo process of this service may be left unreferenced, and every sampled
        request to ``127.0.0.1:<frontend>`` must be answered by ``live.stable_image``'s version.
        """
        st = require(self.directory)
        svc = self._svc(st)
        problems: list[str] = []
        if self.strategy is Strategy.CANARY:
            serving, other = "stable", "canary"
        else:
            serving = (live.active_color or Color.BLUE).value
            other = Color(serving).other.value
        rows = {r.server: r for r in self.api.show_stat() if r.backend == self.backend}
        slot = svc.slots.get(serving)
        if slot is None or not alive(slot.pid):
            problems.append(f"no running process holds the {serving} slot")
        elif slot.image != live.stable_image:
            problems.append(f"the {serving} slot runs {slot.image}, expected {live.stable_image}")
        row = rows.get(serving)
        if row is None:
            problems.append(f"haproxy has no server {self.backend}/{serving}")
        else:
            if slot is not None and row.addr.rpartition(":")[2] != str(slot.port):
                problems.append(f"server {serving} points at {row.addr}, its process listens on 127.0.0.1:{slot.port}")
            if row.weight != 100:
                problems.append(f"server {serving} has weight {row.weight}, expected 100")
        if other in rows and rows[other].weight != 0:
            problems.append(f"server {other} has weight {rows[other].weight}, expected 0")
        stray = sorted(svc.starting) + sorted(r.port for r in svc.retiring if alive(r.pid))
        if stray:
            problems.append(f"processes on ports {stray} were left unreferenced")
        problems += self._sample(st, version_of(live.stable_image) if live.stable_image else "",
                                 samples if samples is not None else self.SAMPLES)
        return problems

    def _sample(self, st: SandboxState, version: str, n: int) -> list[str]:
        port = self._svc(st).frontend_port
        seen: dict[str, int] = {}
        for _ in range(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3.0)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                # Served by a version = its header; an error it chose to answer (a fault profile) still counts,
                # HAProxy's own 503 (no server, or one naming a dead port) carries no version and does not.
                key = resp.getheader("X-Version") or f"HTTP {resp.status} from haproxy"
            except OSError as exc:
                key = f"connection failed ({type(exc).__name__})"
            finally:
                conn.close()
            seen[key] = seen.get(key, 0) + 1
        good = seen.pop(version, 0)
        if good == n:
            return []
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(seen.items()))
        return [f"{good}/{n} sampled requests were served by {version} through 127.0.0.1:{port} ({shown})"]

    def finalize(self) -> None:
        # finalize never raises, by contract: it only reaps children that already exited.
        with contextlib.suppress(Exception):
            reap()
