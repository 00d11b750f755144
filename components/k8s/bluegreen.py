"""``BlueGreenService``: blue and green Deployments, an active and a preview Service.

Built by ``components.k8s.build_service`` for ``strategy: bluegreen``. The rollout engine puts the
new image on the inactive color (``blueImage``/``greenImage``), which scales it to the full count,
smoke-tests it through the preview Service, then flips ``activeColor``: a flip changes the two
Service selectors and nothing else. Once both colors carry the same image again, the inactive one
idles at ``idleReplicas``.
"""

from __future__ import annotations

import pulumi

from components.k8s import labels as lbl
from components.k8s.delivery import DeliveryComponent, ServicePlan, base_workloads, namespace_of
from components.k8s.manifests import Manifest
from components.k8s.outputs import ServiceOutputs
from components.k8s.routers import Backend, RouteContext, TrafficRouter, router_for
from components.k8s.workload import TrackPlan, service_manifest, track_manifests
from components.spec import Color, ServiceSpec, Strategy, Tier

TYPE = "gantry:k8s:BlueGreenService"


def preview_service_name(name: str) -> str:
    return f"{name}-preview"


def idle_replicas(spec: ServiceSpec, tier: Tier) -> int:
    """An idle inactive color's pods: as set, else 0 outside prod and the full count in prod.

    Prod keeps the old color warm so a switch back is instant and a switch forward never waits
    for pods to schedule; elsewhere the idle color costs nothing.
    """
    if spec.idle_replicas is not None:
        return spec.idle_replicas
    return spec.replicas if tier is Tier.PROD else 0


def image_of(spec: ServiceSpec, color: Color) -> str:
    chosen = spec.blue_image if color is Color.BLUE else spec.green_image
    return chosen if chosen is not None else spec.image


def switch_in_progress(spec: ServiceSpec) -> bool:
    """The colors run different images: a candidate awaits the switch, or the old version awaits promotion."""
    return image_of(spec, Color.BLUE) != image_of(spec, Color.GREEN)


def color_plans(name: str, spec: ServiceSpec, tier: Tier) -> dict[Color, TrackPlan]:
    """The active color runs the full count. So does the inactive one while a switch is in progress:
    the preview must have pods to smoke-test, and flipping ``activeColor`` must move only selectors
    (never traffic onto pods that are still starting). Otherwise the inactive color idles.
    """
    idle = idle_replicas(spec, tier)
    plans: dict[Color, TrackPlan] = {}
    for color in (Color.BLUE, Color.GREEN):
        warm = color is spec.active_color or switch_in_progress(spec) or idle >= spec.replicas
        # An idle color below full strength is pinned: an HPA cannot hold a Deployment at 0.
        plans[color] = TrackPlan(
            name, lbl.COLOR, color.value, image_of(spec, color),
            spec.replicas if warm else idle, spec.hpa.enabled and warm,
        )
    return plans


def plan_bluegreen(name: str, spec: ServiceSpec, tier: Tier, router: TrafficRouter) -> ServicePlan:
    """All objects of a blue/green service (pure; the component registers them)."""
    workloads = base_workloads(name, spec)
    for plan in color_plans(name, spec, tier).values():
        workloads += track_manifests(spec, tier, plan)
    active, preview = spec.active_color, spec.active_color.other
    workloads.append(service_manifest(name, name, spec, {lbl.NAME: name, lbl.COLOR: active.value}))
    workloads.append(
        service_manifest(name, preview_service_name(name), spec, {lbl.NAME: name, lbl.COLOR: preview.value})
    )
    routes: list[Manifest] = []
    if spec.hostnames:
        # External traffic always goes to the active Service; the switch itself is the selector flip.
        ctx = RouteContext(
            service=name,
            namespace=spec.namespace,
            hostnames=tuple(spec.hostnames),
            gateway=spec.gateway,
            port=spec.service_port,
            backends=(Backend(name, 100),),
        )
        routes = router.manifests(ctx)
    return ServicePlan(namespace=namespace_of(spec), workloads=workloads, routes=routes)


class BlueGreenService(DeliveryComponent):
    """Blue and green Deployments; the active Service selects one color, the preview the other."""

    STRATEGY = Strategy.BLUEGREEN

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
        self.plan: ServicePlan = plan_bluegreen(name, spec, tier, self.router)
        self.resources: dict[str, pulumi.CustomResource] = self._register(self.plan)
        self.service_name: str = name
        self.preview_service_name: str = preview_service_name(name)
        self.active_color: Color = spec.active_color
        self._finish(ServiceOutputs.build(spec, service_name=self.service_name,
                                          preview_service_name=self.preview_service_name))
