"""Hypothesis properties of rendered blue/green and canary services, under Pulumi mocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from k8s_helpers import (
    DEPLOYMENT,
    DESTINATION_RULE,
    HPA,
    HTTPROUTE,
    INGRESS,
    NGINX,
    PDB,
    SERVICE,
    TRAFFIC_SPLIT,
    VIRTUAL_SERVICE,
    bluegreen_specs,
    canary_specs,
    named,
    pod_labels,
    render_service,
    selects,
    service_names,
    tiers,
)

from components.spec import Color, RouterKind, ServiceSpec, Strategy, Tier
from infra.render import RenderResult

RENDER = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_spec = st.one_of(canary_specs(), bluegreen_specs())


@RENDER
@given(name=service_names, spec=any_spec, tier=tiers)
def test_every_deployment_selector_is_a_subset_of_its_pod_labels(name: str, spec: ServiceSpec, tier: Tier) -> None:
    result = render_service(name, spec, tier)
    deployments = result.of_type(DEPLOYMENT)
    assert len(deployments) == 2
    for d in deployments:
        selector = d.inputs["spec"]["selector"]["matchLabels"]
        assert selector, d.name
        assert selector.items() <= pod_labels(d).items(), d.name


@RENDER
@given(name=service_names, spec=bluegreen_specs(), tier=tiers)
def test_active_service_selects_exactly_one_color_and_colors_are_disjoint(
    name: str, spec: ServiceSpec, tier: Tier
) -> None:
    result = render_service(name, spec, tier)
    blue, green = named(result, DEPLOYMENT, f"{name}-blue"), named(result, DEPLOYMENT, f"{name}-green")
    by_color = {Color.BLUE: pod_labels(blue), Color.GREEN: pod_labels(green)}
    active = named(result, SERVICE, name).inputs["spec"]["selector"]
    preview = named(result, SERVICE, f"{name}-preview").inputs["spec"]["selector"]
    assert [c for c, labels in by_color.items() if selects(active, labels)] == [spec.active_color]
    assert [c for c, labels in by_color.items() if selects(preview, labels)] == [spec.active_color.other]
    # Disjoint: neither Deployment's selector can match the other color's pods.
    blue_sel, green_sel = (d.inputs["spec"]["selector"]["matchLabels"] for d in (blue, green))
    assert not selects(blue_sel, by_color[Color.GREEN])
    assert not selects(green_sel, by_color[Color.BLUE])


def _hosts_and_paths(ingress: Mapping[str, Any]) -> list[tuple[str | None, str, str]]:
    return [
        (rule.get("host"), path["path"], path["pathType"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def _route_weights(result: RenderResult, kind: RouterKind, name: str) -> dict[str, float]:
    """Share of traffic per backend Service, read the way each data plane reads its objects."""
    if kind is RouterKind.GATEWAY_API:
        (rule,) = result.one(HTTPROUTE).inputs["spec"]["rules"]
        refs = rule["backendRefs"]
        total = sum(r["weight"] for r in refs)
        return {r["name"]: 100 * r["weight"] / total for r in refs}
    if kind is RouterKind.ISTIO:
        (http,) = result.one(VIRTUAL_SERVICE).inputs["spec"]["http"]
        return {r["destination"]["host"].split(".")[0]: float(r["weight"]) for r in http["route"]}
    if kind is RouterKind.SMI:
        # Linkerd sends each backend its weight out of the sum of the split's weights.
        split = result.one(TRAFFIC_SPLIT).inputs["spec"]
        assert split["service"] == name  # clients address the apex Service
        total = sum(b["weight"] for b in split["backends"])
        return {b["service"]: 100 * b["weight"] / total for b in split["backends"]}
    main = named(result, INGRESS, name).inputs
    canary = named(result, INGRESS, f"{name}-canary").inputs
    assert f"{NGINX}/canary" not in main["metadata"].get("annotations", {})
    ann = canary["metadata"]["annotations"]
    assert ann[f"{NGINX}/canary"] == "true"
    share = 100 * int(ann[f"{NGINX}/canary-weight"]) / int(ann[f"{NGINX}/canary-weight-total"])
    # ingress-nginx only honours a canary Ingress whose host and path match the main one.
    assert _hosts_and_paths(canary) == _hosts_and_paths(main)
    main_service = main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    canary_service = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    return {main_service: 100 - share, canary_service: share}


@RENDER
@given(name=service_names, spec=canary_specs(with_canary_image=True), tier=tiers)
def test_route_weights_sum_to_100_for_every_router(name: str, spec: ServiceSpec, tier: Tier) -> None:
    result = render_service(name, spec, tier)
    weights = _route_weights(result, spec.router, name)
    assert sum(weights.values()) == 100
    assert weights == {name: 100 - spec.canary_weight, f"{name}-canary": spec.canary_weight}
    # Every backend the route names is a Service this component created, in its namespace.
    services = {r.inputs["metadata"]["name"] for r in result.of_type(SERVICE)}
    assert set(weights) <= services
    if spec.router is RouterKind.ISTIO:
        hosts = {r.inputs["spec"]["host"] for r in result.of_type(DESTINATION_RULE)}
        assert hosts == {f"{s}.{spec.namespace}.svc.cluster.local" for s in weights}


_TRACK_WORDS = ("stable", "canary")


def _diff(a: object, b: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[tuple[str, ...]] = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), (*path, str(key)))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _diff(x, y, (*path, "[]"))]
    return [] if a == b else [path]


def _untracked(value: Any) -> Any:
    """Replace the track word in names and label values, so only real differences remain."""
    if isinstance(value, Mapping):
        return {k: _untracked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untracked(v) for v in value]
    if isinstance(value, str):
        for word in _TRACK_WORDS:
            value = value.replace(word, "TRACK")
    return value


@RENDER
@given(name=service_names, spec=canary_specs(with_canary_image=True), tier=tiers)
def test_stable_and_canary_differ_only_in_image_version_and_replicas(
    name: str, spec: ServiceSpec, tier: Tier
) -> None:
    result = render_service(name, spec, tier)
    stable = named(result, DEPLOYMENT, f"{name}-stable").inputs
    canary = named(result, DEPLOYMENT, f"{name}-canary").inputs
    differing = set(_diff(_untracked(stable), _untracked(canary)))
    allowed = {
        ("spec", "replicas"),
        ("spec", "template", "spec", "containers", "[]", "image"),
        ("spec", "template", "metadata", "labels", "app.kubernetes.io/version"),
    }
    assert differing <= allowed
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == spec.image
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == spec.canary_image


@RENDER
@given(name=service_names, spec=any_spec, tier=tiers)
def test_pdb_min_available_is_below_hpa_min_replicas(name: str, spec: ServiceSpec, tier: Tier) -> None:
    result = render_service(name, spec, tier)
    pdbs = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in result.of_type(PDB)}
    hpas = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in result.of_type(HPA)}
    deployments = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in result.of_type(DEPLOYMENT)}
    assert set(pdbs) == set(deployments)
    assert set(hpas) <= set(deployments)
    if spec.hpa.enabled:
        # The active/stable workload is always autoscaled when the HPA is on.
        primary = f"{name}-{spec.active_color.value}" if spec.strategy is Strategy.BLUEGREEN else f"{name}-stable"
        assert primary in hpas
    else:
        assert hpas == {}
    for dep_name, dep in deployments.items():
        pdb = pdbs[dep_name]
        assert pdb["selector"]["matchLabels"] == dep["selector"]["matchLabels"]
        if dep_name in hpas:
            hpa = hpas[dep_name]
            assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep_name}
            assert pdb["minAvailable"] < hpa["minReplicas"]
            assert "replicas" not in dep, "an HPA-scaled Deployment must not set replicas"
        else:
            assert pdb["minAvailable"] < max(dep["replicas"], 1)
