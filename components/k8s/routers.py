"""Pluggable traffic routers: weighted routes for Gateway API, Istio, NGINX ingress and SMI (Linkerd).

Called by ``CanaryService`` (stable/canary split) and ``BlueGreenService`` (one backend that
exposes the active Service). A router is one small interface: given the backends and their weights,
return the objects that route traffic. Only these objects change when the rollout engine moves a
weight, so a weight step is a routing-only update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from components.k8s import labels as lbl
from components.k8s.manifests import JsonValue, Manifest
from components.spec import RouterKind
from components.validation import SpecError

NGINX_PREFIX = "nginx.ingress.kubernetes.io"
NGINX_CLASS = "nginx"
TOTAL_WEIGHT = 100


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service that receives ``weight`` percent of the route's traffic."""

    service: str
    weight: int


@dataclass(frozen=True, slots=True)
class RouteContext:
    """Everything a router needs: where the route lives, what it serves and where traffic goes."""

    service: str
    namespace: str
    hostnames: tuple[str, ...]
    gateway: str
    """``name`` or ``namespace/name`` of the Gateway (Gateway API) or Istio gateway."""
    port: int
    backends: tuple[Backend, ...]

    def __post_init__(self) -> None:
        if not self.backends:
            raise SpecError("backends", "at least one Service", [])
        total = sum(b.weight for b in self.backends)
        if total != TOTAL_WEIGHT or any(not 0 <= b.weight <= TOTAL_WEIGHT for b in self.backends):
            weights = [b.weight for b in self.backends]
            raise SpecError("backends", f"weights from 0 to 100 that sum to {TOTAL_WEIGHT}", weights)

    @property
    def labels(self) -> dict[str, str]:
        return lbl.common(self.service, self.namespace)

    def fqdn(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc.cluster.local"


class TrafficRouter(Protocol):
    """Turns weighted backends into the routing objects of one traffic-management system."""

    @property
    def kind(self) -> RouterKind: ...

    def manifests(self, ctx: RouteContext) -> list[Manifest]:
        """The objects that send each backend its weight of the traffic."""
        ...


class GatewayApiRouter:
    """Gateway API ``HTTPRoute`` with weighted ``backendRefs`` on one rule."""

    @property
    def kind(self) -> RouterKind:
        return RouterKind.GATEWAY_API

    def manifests(self, ctx: RouteContext) -> list[Manifest]:
        gw_namespace, _, gw_name = ctx.gateway.rpartition("/")
        parent: dict[str, JsonValue] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name}
        if gw_namespace:
            parent["namespace"] = gw_namespace
        spec: dict[str, JsonValue] = {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": b.service, "port": ctx.port, "weight": b.weight}
                        for b in ctx.backends
                    ],
                }
            ],
        }
        if ctx.hostnames:
            spec["hostnames"] = list(ctx.hostnames)
        return [
            Manifest(
                api_version="gateway.networking.k8s.io/v1",
                kind="HTTPRoute",
                name=ctx.service,
                namespace=ctx.namespace,
                labels=ctx.labels,
                body={"spec": spec},
            )
        ]


class IstioRouter:
    """Istio ``VirtualService`` splitting by weight, plus a ``DestinationRule`` per backend host.

    The VirtualService also claims the first backend's in-mesh host, so east-west callers of the
    stable Service see the same split as traffic entering through the gateway. The DestinationRules
    pin mutual TLS for every destination the split sends to.
    """

    @property
    def kind(self) -> RouterKind:
        return RouterKind.ISTIO

    def manifests(self, ctx: RouteContext) -> list[Manifest]:
        primary = ctx.fqdn(ctx.backends[0].service)
        gateways: list[JsonValue] = ["mesh"]
        if ctx.hostnames:
            gateways.insert(0, ctx.gateway)
        virtual_service = Manifest(
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            name=ctx.service,
            namespace=ctx.namespace,
            labels=ctx.labels,
            body={
                "spec": {
                    "hosts": [*ctx.hostnames, primary],
                    "gateways": gateways,
                    "http": [
                        {
                            "name": "weighted",
                            "route": [
                                {
                                    "destination": {"host": ctx.fqdn(b.service), "port": {"number": ctx.port}},
                                    "weight": b.weight,
                                }
                                for b in ctx.backends
                            ],
                        }
                    ],
                }
            },
        )
        rules = [
            Manifest(
                api_version="networking.istio.io/v1",
                kind="DestinationRule",
                name=b.service,
                namespace=ctx.namespace,
                labels=ctx.labels,
                body={"spec": {"host": ctx.fqdn(b.service), "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}},
            )
            for b in ctx.backends
        ]
        return [virtual_service, *rules]


class NginxRouter:
    """ingress-nginx: a main ``Ingress`` for the first backend, a canary ``Ingress`` for each other.

    ingress-nginx sends ``canary-weight`` out of ``canary-weight-total`` requests to the canary
    Ingress and the rest to the main one, so the main Ingress carries no weight of its own.
    """

    @property
    def kind(self) -> RouterKind:
        return RouterKind.NGINX

    def manifests(self, ctx: RouteContext) -> list[Manifest]:
        if len(ctx.backends) > 2:
            raise SpecError("backends", "at most two Services for the nginx router", len(ctx.backends))
        main, *canaries = ctx.backends
        out = [self._ingress(ctx, ctx.service, main.service, {})]
        for b in canaries:
            annotations = {
                f"{NGINX_PREFIX}/canary": "true",
                f"{NGINX_PREFIX}/canary-weight": str(b.weight),
                f"{NGINX_PREFIX}/canary-weight-total": str(TOTAL_WEIGHT),
            }
            out.append(self._ingress(ctx, b.service, b.service, annotations))
        return out

    @staticmethod
    def _ingress(ctx: RouteContext, name: str, service: str, annotations: dict[str, str]) -> Manifest:
        path: dict[str, JsonValue] = {
            "path": "/",
            "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": ctx.port}}},
        }
        rules: list[JsonValue] = (
            [{"host": h, "http": {"paths": [path]}} for h in ctx.hostnames]
            if ctx.hostnames
            else [{"http": {"paths": [path]}}]
        )
        return Manifest(
            api_version="networking.k8s.io/v1",
            kind="Ingress",
            name=name,
            namespace=ctx.namespace,
            labels=ctx.labels,
            annotations=annotations,
            body={"spec": {"ingressClassName": NGINX_CLASS, "rules": rules}},
        )


class SmiRouter:
    """SMI ``TrafficSplit`` (``split.smi-spec.io/v1alpha2``), as Linkerd's SMI extension implements it.

    Clients (in the mesh, or an ingress meshed by Linkerd) address the apex Service ``<service>``; the
    split sends each backend Service its integer weight out of the total. The apex may be a backend itself
    (the stable Service), as Linkerd's traffic-split examples do.
    """

    @property
    def kind(self) -> RouterKind:
        return RouterKind.SMI

    def manifests(self, ctx: RouteContext) -> list[Manifest]:
        backends: list[JsonValue] = [{"service": b.service, "weight": b.weight} for b in ctx.backends]
        return [
            Manifest(
                api_version="split.smi-spec.io/v1alpha2",
                kind="TrafficSplit",
                name=ctx.service,
                namespace=ctx.namespace,
                labels=ctx.labels,
                body={"spec": {"service": ctx.service, "backends": backends}},
            )
        ]


ROUTERS: dict[RouterKind, TrafficRouter] = {}
"""The router registry: one instance per ``RouterKind``, added by ``register``."""


def register(router: TrafficRouter) -> TrafficRouter:
    """Register ``router`` under its kind, once."""
    if router.kind in ROUTERS:
        raise ValueError(f"router {router.kind.value!r} is already registered")
    ROUTERS[router.kind] = router
    return router


for _router in (GatewayApiRouter(), IstioRouter(), NginxRouter(), SmiRouter()):
    register(_router)


def router_for(kind: RouterKind | str) -> TrafficRouter:
    """The router registered for ``kind``; an unknown name is an error listing the valid ones."""
    try:
        return ROUTERS[RouterKind(kind)]
    except ValueError:
        valid = ", ".join(k.value for k in ROUTERS)
        raise SpecError("router", f"one of {valid}", kind) from None


def split(stable: str, canary: str, canary_weight: int) -> tuple[Backend, ...]:
    """Stable gets what the canary does not; both backends stay listed at weight 0 or 100."""
    return (Backend(stable, TOTAL_WEIGHT - canary_weight), Backend(canary, canary_weight))

