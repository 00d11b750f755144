"""Builders, hypothesis strategies and render helpers for the k8s delivery component tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from hypothesis import strategies as st

from components.k8s import BlueGreenService, CanaryService, TrafficRouter, build_service
from components.spec import Color, RouterKind, ServiceSpec, Strategy, Tier
from infra.render import RenderedResource, RenderResult, render_callable

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
HTTPROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
TRAFFIC_SPLIT = "kubernetes:split.smi-spec.io/v1alpha2:TrafficSplit"
ROUTE_TYPES = {HTTPROUTE, VIRTUAL_SERVICE, DESTINATION_RULE, INGRESS, TRAFFIC_SPLIT}
PROVIDER_NAME = "cluster"
NGINX = "nginx.ingress.kubernetes.io"


def make_service_spec(**overrides: object) -> ServiceSpec:
    """A valid canary spec; overrides use Python field names (``canary_weight=10``)."""
    base: dict[str, object] = {"image": "ghcr.io/acme/web:1.0.0", "namespace": "shop", "hostnames": ["web.example.com"]}
    base.update(overrides)
    return ServiceSpec.model_validate(base)


def make_bluegreen_spec(**overrides: object) -> ServiceSpec:
    base: dict[str, object] = {"strategy": Strategy.BLUEGREEN, "image": "ghcr.io/acme/api:2.0.0", "namespace": "api"}
    base.update(overrides)
    return make_service_spec(**base)


def render_service(
    name: str,
    spec: ServiceSpec,
    tier: Tier = Tier.PROD,
    router: TrafficRouter | None = None,
) -> RenderResult:
    """Render one component on an explicit Kubernetes provider, as the program does."""

    def program() -> None:
        provider = k8s.Provider(PROVIDER_NAME, kubeconfig="{}")
        opts = pulumi.ResourceOptions(provider=provider)
        if router is None:
            svc = build_service(name, spec, tier=tier, opts=opts)
        elif spec.strategy is Strategy.CANARY:
            svc = CanaryService(name, spec, tier=tier, router=router, opts=opts)
        else:
            svc = BlueGreenService(name, spec, tier=tier, router=router, opts=opts)
        pulumi.export("service", dict(svc.stack_outputs))

    return render_callable(program)


def named(result: RenderResult, type_: str, name: str) -> RenderedResource:
    """Look a Kubernetes object up by its ``metadata.name`` (resource names are ``namespace/name``)."""
    found = [r for r in result.of_type(type_) if r.inputs["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {type_} named {name}, found {[r.name for r in result.of_type(type_)]}"
    return found[0]


def pod_spec(deployment: RenderedResource) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = deployment.inputs["spec"]["template"]["spec"]
    return spec


def container(deployment: RenderedResource) -> Mapping[str, Any]:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1
    found: Mapping[str, Any] = containers[0]
    return found


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Kubernetes equality-based selection: every selector pair is present in the labels."""
    return all(labels.get(k) == v for k, v in selector.items())


def pod_labels(deployment: RenderedResource) -> Mapping[str, str]:
    labels: Mapping[str, str] = deployment.inputs["spec"]["template"]["metadata"]["labels"]
    return labels


# --------------------------------------------------------------------------- hypothesis

_names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
_namespaces = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True).filter(lambda n: n != "default")
_tags = st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3}", fullmatch=True)
_digests = st.from_regex(r"[a-f0-9]{64}", fullmatch=True).map(lambda h: f"@sha256:{h}")
_hostnames = st.lists(st.sampled_from(["a.example.com", "b.example.org", "*.apps.example.net"]), max_size=2,
                      unique=True)


@st.composite
def images(draw: st.DrawFn, repo: str = "ghcr.io/acme/app") -> str:
    if draw(st.booleans()):
        return f"{repo}:{draw(_tags)}"
    return f"{repo}{draw(_digests)}"


@st.composite
def hpa_specs(draw: st.DrawFn) -> dict[str, object]:
    low = draw(st.integers(2, 5))
    return {
        "enabled": draw(st.booleans()),
        "min_replicas": low,
        "max_replicas": draw(st.integers(low, low + 8)),
        "cpu_utilization": draw(st.integers(10, 100)),
        "memory_utilization": draw(st.integers(10, 100)),
    }


@st.composite
def _common(draw: st.DrawFn) -> dict[str, object]:
    port = draw(st.integers(1024, 65535))
    return {
        "image": draw(images()),
        "namespace": draw(_namespaces),
        "replicas": draw(st.integers(2, 6)),
        "port": port,
        "service_port": draw(st.integers(1, 65535)),
        "hostnames": draw(_hostnames),
        "router": draw(st.sampled_from(list(RouterKind))),
        "hpa": draw(hpa_specs()),
        "readiness": {"path": "/ready", "port": port},
        "liveness": {"path": "/live", "port": port, "initial_delay_seconds": draw(st.integers(0, 30))},
        "env": draw(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True),
                                    st.text("abc123", max_size=5), max_size=2)),
    }


@st.composite
def canary_specs(draw: st.DrawFn, with_canary_image: bool | None = None) -> ServiceSpec:
    data = draw(_common())
    has_image = draw(st.booleans()) if with_canary_image is None else with_canary_image
    data["strategy"] = Strategy.CANARY
    if has_image:
        data["canary_image"] = draw(images())
        data["canary_weight"] = draw(st.integers(0, 100))
    return ServiceSpec.model_validate(data)


@st.composite
def bluegreen_specs(draw: st.DrawFn) -> ServiceSpec:
    data = draw(_common())
    data["strategy"] = Strategy.BLUEGREEN
    data["active_color"] = draw(st.sampled_from(list(Color)))
    data["blue_image"] = draw(st.none() | images())
    data["green_image"] = draw(st.none() | images())
    replicas = data["replicas"]
    assert isinstance(replicas, int)
    data["idle_replicas"] = draw(st.none() | st.integers(0, replicas))
    return ServiceSpec.model_validate(data)


service_names = _names
tiers = st.sampled_from(list(Tier))
