"""Kubernetes delivery components (blue/green and canary services); the Pulumi program calls ``build_service``.

Importing this package has no side effects: it registers nothing until a component is constructed.
"""

from __future__ import annotations

from typing import Protocol

import pulumi

from components.k8s.bluegreen import BlueGreenService
from components.k8s.canary import CanaryService
from components.k8s.outputs import ServiceOutputs
from components.k8s.routers import ROUTERS, TrafficRouter, router_for
from components.spec import ServiceSpec, Strategy, Tier

__all__ = [
    "ROUTERS",
    "BlueGreenService",
    "CanaryService",
    "DeliveryService",
    "TrafficRouter",
    "build_service",
    "router_for",
]


class DeliveryService(Protocol):
    """What the program exports per service (under ``services.<name>``) for the rollout engine:
    the typed ``components.k8s.outputs.ServiceOutputs`` (None where a strategy has no such value)."""

    @property
    def outputs(self) -> ServiceOutputs: ...


def build_service(
    name: str, spec: ServiceSpec, *, tier: Tier, opts: pulumi.ResourceOptions | None = None
) -> DeliveryService:
    """Build the component for ``spec.strategy``; pass the cluster's Kubernetes provider in ``opts``."""
    if spec.strategy is Strategy.BLUEGREEN:
        return BlueGreenService(name, spec, tier=tier, opts=opts)
    return CanaryService(name, spec, tier=tier, opts=opts)
