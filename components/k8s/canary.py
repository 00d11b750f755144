"""``CanaryService``: a stable and a canary Deployment with a weighted split through a router.

Built by ``components.k8s.build_service`` for ``strategy: canary``. The rollout engine moves
``canaryWeight`` (a routing-only change), sets ``canaryImage`` to start a canary, and on promotion
copies it to ``image`` and resets the weight to 0.
"""

from __future__ import annotations

import pulumi

from components.k8s import labels as lbl
from components.k8s.delivery import DeliveryComponent, ServicePlan, base_workloads, namespace_of
from components.k8s.outputs import ServiceOutputs
from components.k8s.routers import RouteContext, TrafficRouter, router_for, split
from components.k8s.workload import TrackPlan, service_manifest, track_manifests
from components.spec import ServiceSpec, Strategy, Tier

TYPE = "gantry:k8s:CanaryService"


def canary_service_name(name: str) -> str:
    return f"{name}-canary"


def track_plans(name: str, spec: ServiceSpec) -> tuple[TrackPlan, TrackPlan]:
    """Stable runs ``image``; the canary runs ``canaryImage``, or nothing (0 pods) without one."""
    stable = TrackPlan(name, lbl.TRACK, lbl.Track.STABLE, spec.image, spec.replicas, spec.hpa.enabled)
    if spec.canary_image is None:
        canary = TrackPlan(name, lbl.TRACK, lbl.Track.CANARY, spec.image, 0, False)
    else:
        canary = TrackPlan(name, lbl.TRACK, lbl.Track.CANARY, spec.canary_image, spec.replicas, spec.hpa.enabled)
    return stable, canary


def plan_canary(name: str, spec: ServiceSpec, tier: Tier, router: TrafficRouter) -> ServicePlan:
    """All objects of a canary service (pure; the component registers them)."""
    stable, canary = track_plans(name, spec)
    workloads = base_workloads(name, spec)
    for plan in (stable, canary):
        workloads += track_manifests(spec, tier, plan)
    workloads.append(service_manifest(name, name, spec, {lbl.NAME: name, lbl.TRACK: lbl.Track.STABLE}))
    workloads.append(
        service_manifest(name, canary_service_name(name), spec, {lbl.NAME: name, lbl.TRACK: lbl.Track.CANARY})
    )
    ctx = RouteContext(
        service=name,
        namespace=spec.namespace,
        hostnames=tuple(spec.hostnames),
        gateway=spec.gateway,
        port=spec.service_port,
        backends=split(name, canary_service_name(name), spec.canary_weight),
    )
    return ServicePlan(namespace=namespace_of(spec), workloads=workloads, routes=router.manifests(ctx))


class CanaryService(DeliveryComponent):
    """Stable and canary Deployments, one Service each, and the router's weighted split."""

    STRATEGY = Strategy.CANARY

    def __init__(
        self,
        name: str,
        spec: ServiceSpec,
        *,
        tier: Tier,
        router: TrafficRouter | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, spec, tier=tier, opts=opts)
        self.router: TrafficRouter = router if router is not None else router_for(spec.router)
        self.plan: ServicePlan = plan_canary(name, spec, tier, self.router)
        self.resources: dict[str, pulumi.CustomResource] = self._register(self.plan)
        self.service_name: str = name
        self.canary_service_name: str = canary_service_name(name)
        self._finish(ServiceOutputs.build(spec, service_name=self.service_name, router=self.router.kind.value))
