"""Typed sandbox settings (``gantry:sandbox`` in a local stack): load, fault profiles per version.

Registered as the ``gantry:sandbox`` section (``infra.registry.SECTIONS``) and validated by ``infra.config`` as
``GantryConfig.sandbox``; read by the sandbox lifecycle, the demo and
``HaproxyTarget`` (a version's fault profile applies whenever that version is started).
"""

from __future__ import annotations

from pydantic import Field

from components.spec import Spec
from infra import registry

PROMETHEUS_SENTINEL = "sandbox"
"""``gantry:rollout.metrics.url: sandbox`` means: the running sandbox's Prometheus, read from its state file."""


class FaultSpec(Spec):
    """How badly one demo version behaves."""

    error_rate: float = Field(default=0.0, ge=0, le=1, description="Share of requests answered 500. Default: 0.")
    latency_ms: float = Field(default=0.0, ge=0, le=60_000, description="Extra latency per request. Default: 0.")
    crash_after: int = Field(default=0, ge=0, description="Exit after N requests; 0 never. Default: 0.")


class SandboxSettings(Spec):
    """The local sandbox: load generator and per-version faults. Only used by ``cloud: local`` stacks."""

    rate_rps: float = Field(default=200.0, gt=0, le=2000, description="Load generator rate. Default: 200 rps.")
    faults: dict[str, FaultSpec] = Field(
        default_factory=dict, description="Fault profile by version label (v3, ...). Default: all healthy."
    )


registry.register_section("sandbox", SandboxSettings)
