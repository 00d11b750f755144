"""``HaproxyTarget``: the rollout engine's Target seam over the local sandbox (HAProxy runtime API + demo processes).

Built by ``infra.rollout.factory`` when a stack sets ``gantry:rollout.target: haproxy``, as
``HaproxyTarget(project_dir, config, service)``: ``project_dir`` holds ``.gantry/sandbox/`` (the
sandbox must be up), ``config`` is the stack's ``GantryConfig`` (fault profiles), ``service`` a
service of that stack. ``prepare`` starts the new version's process; ``set_weights``/``switch`` are
``set weight`` commands on the admin socket (no reload); ``current`` reads HAProxy back, so the
journal can be checked against what really serves traffic. Every method is idempotent.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from components.spec import Color, Strategy
from infra.config import GantryConfig
from infra.rollout.metrics.prometheus import PrometheusProvider, PrometheusTraffic
from infra.rollout.seams import JSONObject, MetricQuery, MetricsProvider, Track, TrafficState
from infra.sandbox import lifecycle
from infra.sandbox.haproxy import PLACEHOLDER_PORT, RuntimeApi, metrics_backend
from infra.sandbox.procs import SandboxError, alive, reap
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

    def _active_color(self, svc: ServiceState) -> Color:
        weights = self._weights()
        # The active color is the one taking traffic; the state file only breaks a 0/0 tie.
        for color in (Color.BLUE, Color.GREEN):
            if weights.get(color.value, 0) > 0:
                return color
        return Color.BLUE if svc.slots.get("blue") is not None else Color.GREEN

    def _attach(self, slot_name: str, slot: Slot, weight: int) -> None:
        self.api.set_weight(self.backend, slot_name, weight)
        self.api.set_addr(self.backend, slot_name, slot.port)
        self.api.set_state(self.backend, slot_name, "ready")
        mx = metrics_backend(self.service, slot_name)
        self.api.set_addr(mx, "s", slot.port)
        self.api.set_state(mx, "s", "ready")

    def _detach(self, slot_name: str) -> None:
        self.api.set_weight(self.backend, slot_name, 0)
        self.api.set_state(self.backend, slot_name, "maint")
        self.api.set_addr(self.backend, slot_name, PLACEHOLDER_PORT)
        mx = metrics_backend(self.service, slot_name)
        self.api.set_state(mx, "s", "maint")
        self.api.set_addr(mx, "s", PLACEHOLDER_PORT)

    def _start(self, st: SandboxState, image: str) -> Slot:
        version = version_of(image)
        slot = lifecycle.start_version(self.directory, self.service, image,
                                       lifecycle.fault_for(version, st.faults, self.config))
        return slot

    def _running(self, slot: Slot | None, image: str) -> bool:
        return slot is not None and slot.image == image and alive(slot.pid)

    def _sync(self, st: SandboxState) -> None:
        save(self.directory, st)

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
        with locked(self.directory):
            st = require(self.directory)
            svc = self._svc(st)
            if self.strategy is Strategy.CANARY:
                slot_name = "canary"
                stable = svc.slots.get("stable")
                if stable is not None and stable.image == image:
                    raise SandboxError(f"image must differ from the stable one, but {image!r} was given")
            else:
                slot_name = self._active_color(svc).other.value
            current = svc.slots.get(slot_name)
            if self._running(current, image):
                assert current is not None
                self._attach(slot_name, current, 0)
                self._sync(st)
            else:
                if current is not None:
                    self._detach(slot_name)
                    lifecycle.stop_version(self.directory, self.service, current)
                new = self._start(st, image)
                svc.slots[slot_name] = new
                self._sync(st)
                self._attach(slot_name, new, 0)
        self._await_scrape(st, image)

    def set_weights(self, canary_weight: int) -> None:
        if self.strategy is not Strategy.CANARY:
            raise SandboxError(f"set_weights needs a canary service, but {self.service} is {self.strategy.value}")
        if not 0 <= canary_weight <= 100:
            raise ValueError(f"canary_weight must be within 0..100, but {canary_weight} was given")
        st = require(self.directory)
        if self._svc(st).slots.get("canary") is None and canary_weight > 0:
            raise SandboxError("the canary must be prepared before it takes traffic")
        # Raise the side gaining traffic first, so the backend never has all weights at 0.
        if canary_weight >= self._weights().get("canary", 0):
            self.api.set_weight(self.backend, "canary", canary_weight)
            self.api.set_weight(self.backend, "stable", 100 - canary_weight)
        else:
            self.api.set_weight(self.backend, "stable", 100 - canary_weight)
            self.api.set_weight(self.backend, "canary", canary_weight)

    def switch(self, color: Color) -> None:
        if self.strategy is not Strategy.BLUEGREEN:
            raise SandboxError(f"switch needs a blue/green service, but {self.service} is {self.strategy.value}")
        st = require(self.directory)
        if self._svc(st).slots.get(color.value) is None:
            raise SandboxError(f"color {color.value} has no version running; prepare it first")
        self.api.set_weight(self.backend, color.value, 100)
        self.api.set_weight(self.backend, color.other.value, 0)

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
        with locked(self.directory):
            st = require(self.directory)
            svc = self._svc(st)
            if self.strategy is Strategy.CANARY:
                canary, old = svc.slots.get("canary"), svc.slots.get("stable")
                if canary is None:
                    return  # already promoted (resume after a crash)
                # Point the stable slot at the canary's process while the canary slot carries all traffic,
                # then give it back the weight: no request ever sees an empty backend.
                self.api.set_weight(self.backend, "canary", 100)
                self.api.set_weight(self.backend, "stable", 0)
                mx = metrics_backend(self.service, "canary")
                self.api.set_state(mx, "s", "maint")  # one scrape path per process: no double counting
                self._attach("stable", canary, 0)
                self.api.set_weight(self.backend, "stable", 100)
                self._detach("canary")
                svc.slots["stable"], svc.slots["canary"] = canary, None
                self._sync(st)
                if old is not None and old.pid != canary.pid:
                    lifecycle.stop_version(self.directory, self.service, old)
            else:
                active = self._active_color(svc)
                idle = svc.slots.get(active.other.value)
                if idle is not None:
                    self._detach(active.other.value)
                    svc.slots[active.other.value] = None
                    self._sync(st)
                    lifecycle.stop_version(self.directory, self.service, idle)

    def revert(self, checkpoint: JSONObject) -> None:
        with locked(self.directory):
            st = require(self.directory)
            svc = self._svc(st)
            if self.strategy is Strategy.CANARY:
                self._revert_canary(st, svc, checkpoint)
            else:
                self._revert_bluegreen(st, svc, checkpoint)

    def _revert_canary(self, st: SandboxState, svc: ServiceState, checkpoint: JSONObject) -> None:
        want = checkpoint.get("stable_image")
        stable, canary = svc.slots.get("stable"), svc.slots.get("canary")
        if stable is not None and (want is None or stable.image == want) and alive(stable.pid):
            # The usual case: all traffic back to stable first (that is the restore), cleanup after.
            self.api.set_weight(self.backend, "stable", 100)
            self.api.set_weight(self.backend, "canary", 0)
        else:
            # Reverting after a promotion, or stable died: start the checkpointed version again.
            if not isinstance(want, str):
                raise SandboxError("checkpoint has no stable_image to restore")
            fresh = self._start(st, want)
            self._attach("stable", fresh, 100)
            self.api.set_weight(self.backend, "canary", 0)
            if stable is not None:
                lifecycle.stop_version(self.directory, self.service, stable)
            svc.slots["stable"] = fresh
        if canary is not None:
            self._detach("canary")
            svc.slots["canary"] = None
            lifecycle.stop_version(self.directory, self.service, canary)
        self._sync(st)

    def _revert_bluegreen(self, st: SandboxState, svc: ServiceState, checkpoint: JSONObject) -> None:
        color = Color(str(checkpoint.get("active_color", "blue")))
        want = checkpoint.get("active_image")
        slot = svc.slots.get(color.value)
        if slot is None or not alive(slot.pid) or (isinstance(want, str) and slot.image != want):
            if not isinstance(want, str):
                raise SandboxError("checkpoint has no active_image to restore")
            fresh = self._start(st, want)
            self._attach(color.value, fresh, 100)
            if slot is not None:
                lifecycle.stop_version(self.directory, self.service, slot)
            svc.slots[color.value] = fresh
        self.api.set_weight(self.backend, color.value, 100)
        self.api.set_weight(self.backend, color.other.value, 0)
        other = svc.slots.get(color.other.value)
        if other is not None:
            self._detach(color.other.value)
            svc.slots[color.other.value] = None
            lifecycle.stop_version(self.directory, self.service, other)
        self._sync(st)

    def preview_url(self) -> str | None:
        """Blue/green: the idle color's own address, for smoke hooks (None when nothing is prepared)."""
        st = require(self.directory)
        svc = self._svc(st)
        if self.strategy is not Strategy.BLUEGREEN:
            return None
        slot = svc.slots.get(self._active_color(svc).other.value)
        return f"http://127.0.0.1:{slot.port}" if slot else None

    def finalize(self) -> None:
        # finalize never raises, by contract: it only reaps children that already exited.
        with contextlib.suppress(Exception):
            reap()
