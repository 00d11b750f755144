"""Rendered graph of the delivery components: secure/HA defaults, wiring, scaling and outputs."""

from __future__ import annotations

import pytest
from k8s_helpers import (
    DEPLOYMENT,
    HPA,
    HTTPROUTE,
    NAMESPACE,
    PDB,
    PROVIDER_NAME,
    SERVICE,
    SERVICE_ACCOUNT,
    container,
    make_bluegreen_spec,
    make_service_spec,
    named,
    pod_spec,
    render_service,
)

from components.k8s.manifests import Manifest
from components.k8s.outputs import ServiceOutputs
from components.k8s.routers import RouteContext
from components.spec import Color, RouterKind, Tier
from infra.render import STACK_TYPE, RenderResult

OUTPUT_KEYS = {
    "strategy", "namespace", "delivery", "serviceName", "previewServiceName", "activeColor", "canaryWeight",
    "router", "hostnames", "image", "canaryImage", "blueImage", "greenImage", "desiredImage", "rollout",
}
"""Written out by hand on purpose: a key renamed in the typed contract must fail here."""

SPECS = {
    "canary": lambda: make_service_spec(canary_image="ghcr.io/acme/web:1.1.0", canary_weight=10),
    "bluegreen": lambda: make_bluegreen_spec(hostnames=["api.example.com"]),
}


@pytest.fixture(params=sorted(SPECS), scope="module")
def rendered(request: pytest.FixtureRequest) -> RenderResult:
    return render_service("svc", SPECS[request.param](), Tier.PROD)


def test_children_inherit_the_cluster_provider_and_parent(rendered: RenderResult) -> None:
    (provider,) = [r for r in rendered.resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.name == PROVIDER_NAME
    (component,) = [r for r in rendered.resources if r.type.startswith("gantry:k8s:")]
    assert component.type in {"gantry:k8s:CanaryService", "gantry:k8s:BlueGreenService"}
    assert rendered.by_urn(component.parent or "").type == STACK_TYPE
    children = [r for r in rendered.resources if r.type.startswith("kubernetes:")]
    assert len(children) >= 9  # namespace, account, 2 Deployments, 2 PDBs, 2 Services, a route
    for child in children:
        assert child.parent == component.urn, child.urn
        assert child.provider is not None and child.provider.startswith(provider.urn), child.urn


def test_namespace_is_restricted_and_everything_waits_for_it(rendered: RenderResult) -> None:
    ns = rendered.one(NAMESPACE)
    labels = ns.inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    name = ns.inputs["metadata"]["name"]
    assert name != "default"
    for r in rendered.resources:
        if r.type.startswith("kubernetes:") and r.type != NAMESPACE:
            assert r.inputs["metadata"]["namespace"] == name, r.urn
            assert ns.urn in r.dependencies, r.urn


def test_pods_run_with_the_restricted_security_profile(rendered: RenderResult) -> None:
    for d in rendered.of_type(DEPLOYMENT):
        pod, c = pod_spec(d), container(d)
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["runAsUser"] >= 1
        # The read-only root needs a writable scratch dir, backed by a bounded emptyDir.
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert pod["serviceAccountName"] == "svc"
    sa = rendered.one(SERVICE_ACCOUNT)
    assert sa.inputs["automountServiceAccountToken"] is False


def test_containers_have_requests_limits_and_distinct_probes(rendered: RenderResult) -> None:
    for d in rendered.of_type(DEPLOYMENT):
        c = container(d)
        assert set(c["resources"]["requests"]) == {"cpu", "memory"}
        assert set(c["resources"]["limits"]) == {"cpu", "memory"}
        ready, live = c["readinessProbe"], c["livenessProbe"]
        assert ready != live
        ports = {p["containerPort"] for p in c["ports"]}
        assert ready["httpGet"]["port"] in ports and live["httpGet"]["port"] in ports


def test_rollouts_surge_one_and_never_drop_below_capacity(rendered: RenderResult) -> None:
    for d in rendered.of_type(DEPLOYMENT):
        strategy = d.inputs["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_prod_spreads_pods_across_zones_as_a_hard_constraint(rendered: RenderResult) -> None:
    for d in rendered.of_type(DEPLOYMENT):
        rules = {t["topologyKey"]: t for t in pod_spec(d)["topologySpreadConstraints"]}
        zone = rules["topology.kubernetes.io/zone"]
        assert zone["whenUnsatisfiable"] == "DoNotSchedule"
        assert zone["labelSelector"]["matchLabels"] == d.inputs["spec"]["selector"]["matchLabels"]


def test_dev_spreads_across_zones_softly() -> None:
    result = render_service("svc", make_service_spec(replicas=1), Tier.DEV)
    for d in result.of_type(DEPLOYMENT):
        rules = {t["topologyKey"]: t for t in pod_spec(d)["topologySpreadConstraints"]}
        assert rules["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_stack_outputs_carry_every_contract_key() -> None:
    canary = render_service("web", make_service_spec(canary_image="ghcr.io/acme/web:1.1.0", canary_weight=30))
    out = canary.outputs["service"]
    # Pulumi drops None values from exported maps; the present keys must all be contract keys.
    assert set(out) <= OUTPUT_KEYS
    assert out["strategy"] == "canary" and out["serviceName"] == "web" and out["router"] == "gateway-api"
    assert out["canaryWeight"] == 30 and out["canaryImage"] == "ghcr.io/acme/web:1.1.0"
    assert out["hostnames"] == ["web.example.com"] and out["namespace"] == "shop"
    # What the component exported (through the engine's serialisation) parses back into the contract.
    assert ServiceOutputs.model_validate(out).canary_weight == 30
    bg = render_service("api", make_bluegreen_spec(active_color=Color.GREEN, green_image="ghcr.io/acme/api:2.1.0"))
    out = bg.outputs["service"]
    assert set(out) <= OUTPUT_KEYS
    assert out["previewServiceName"] == "api-preview" and out["activeColor"] == "green"
    assert out["blueImage"] == "ghcr.io/acme/api:2.0.0" and out["greenImage"] == "ghcr.io/acme/api:2.1.0"
    assert ServiceOutputs.model_validate(out).active_color is Color.GREEN
    for svc in ("api", "api-preview"):
        named(bg, SERVICE, svc)


def test_stack_outputs_in_python_hold_none_for_the_other_strategy() -> None:
    from components.k8s import build_service

    captured: dict[str, object] = {}

    def program() -> None:
        captured.update(build_service("web", make_service_spec(), tier=Tier.DEV).stack_outputs)

    from infra.render import render_callable

    render_callable(program)
    assert set(captured) == OUTPUT_KEYS == {f.alias for f in ServiceOutputs.model_fields.values()}
    assert captured["previewServiceName"] is None and captured["activeColor"] is None
    assert captured["blueImage"] is None and captured["canaryWeight"] == 0


def test_canary_without_image_scales_to_zero_and_gets_no_traffic() -> None:
    result = render_service("web", make_service_spec(hpa={"enabled": True}))
    canary = named(result, DEPLOYMENT, "web-canary").inputs["spec"]
    stable = named(result, DEPLOYMENT, "web-stable").inputs["spec"]
    assert canary["replicas"] == 0
    assert canary["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/web:1.0.0"
    assert "replicas" not in stable
    assert {h.inputs["metadata"]["name"] for h in result.of_type(HPA)} == {"web-stable"}
    refs = result.one(HTTPROUTE).inputs["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"web": 100, "web-canary": 0}


def test_canary_at_100_takes_all_traffic() -> None:
    result = render_service("web", make_service_spec(canary_image="ghcr.io/acme/web:2.0.0", canary_weight=100))
    refs = result.one(HTTPROUTE).inputs["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"web": 0, "web-canary": 100}
    assert named(result, DEPLOYMENT, "web-canary").inputs["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("tier", "idle", "expected_idle"),
    [(Tier.DEV, None, 0), (Tier.STAGING, None, 0), (Tier.PROD, None, 3), (Tier.PROD, 1, 1), (Tier.DEV, 2, 2)],
)
def test_inactive_color_idles_per_tier(tier: Tier, idle: int | None, expected_idle: int) -> None:
    spec = make_bluegreen_spec(replicas=3, idle_replicas=idle, active_color=Color.GREEN)
    result = render_service("api", spec, tier)
    assert named(result, DEPLOYMENT, "api-green").inputs["spec"]["replicas"] == 3
    assert named(result, DEPLOYMENT, "api-blue").inputs["spec"]["replicas"] == expected_idle
    assert named(result, PDB, "api-blue").inputs["spec"]["minAvailable"] == max(expected_idle - 1, 0)


def test_bluegreen_hpa_pins_a_cold_idle_color_and_scales_a_warm_one() -> None:
    hpa = {"enabled": True, "min_replicas": 2, "max_replicas": 6}
    dev = render_service("api", make_bluegreen_spec(hpa=hpa), Tier.DEV)
    assert {h.inputs["metadata"]["name"] for h in dev.of_type(HPA)} == {"api-blue"}
    assert named(dev, DEPLOYMENT, "api-green").inputs["spec"]["replicas"] == 0
    prod = render_service("api", make_bluegreen_spec(hpa=hpa), Tier.PROD)
    assert {h.inputs["metadata"]["name"] for h in prod.of_type(HPA)} == {"api-blue", "api-green"}
    for h in prod.of_type(HPA):
        metrics = {m["resource"]["name"]: m["resource"]["target"] for m in h.inputs["spec"]["metrics"]}
        assert metrics == {
            "cpu": {"type": "Utilization", "averageUtilization": 70},
            "memory": {"type": "Utilization", "averageUtilization": 80},
        }


def test_bluegreen_without_hostnames_creates_no_route() -> None:
    result = render_service("api", make_bluegreen_spec(hostnames=[]))
    assert not [r for r in result.resources if "gateway.networking" in r.type or "istio" in r.type]
    with_host = render_service("api", make_bluegreen_spec(hostnames=["api.example.com"]))
    refs = with_host.one(HTTPROUTE).inputs["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [("api", 100)]


def test_shared_namespace_can_be_left_to_its_owner() -> None:
    result = render_service("web", make_service_spec(create_namespace=False))
    assert result.of_type(NAMESPACE) == []
    assert all(r.dependencies == () for r in result.resources if r.type.startswith("kubernetes:"))


def test_deployment_labels_follow_the_recommended_set() -> None:
    result = render_service("web", make_service_spec(image="ghcr.io/acme/web@sha256:" + "ab" * 32))
    labels = named(result, DEPLOYMENT, "web-stable").inputs["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "web"
    assert labels["app.kubernetes.io/instance"] == "web-stable"
    assert labels["app.kubernetes.io/version"] == "sha256-abababababab"
    assert labels["app.kubernetes.io/part-of"] == "shop"
    assert labels["app.kubernetes.io/managed-by"] == "gantry"
    assert labels["gantry.dev/track"] == "stable"


class _HeaderRouter:
    """A third-party router: proves the component registers whatever a router plans."""

    @property
    def kind(self) -> RouterKind:
        return RouterKind.GATEWAY_API

    def manifests(self, ctx: RouteContext) -> list[Manifest]:
        return [
            Manifest(
                api_version="example.dev/v1",
                kind="WeightedRoute",
                name=ctx.service,
                namespace=ctx.namespace,
                labels=ctx.labels,
                body={"spec": {"backends": {b.service: b.weight for b in ctx.backends}}},
            )
        ]


def test_a_custom_router_plugs_in() -> None:
    spec = make_service_spec(canary_image="ghcr.io/acme/web:1.1.0", canary_weight=40)
    result = render_service("web", spec, router=_HeaderRouter())
    route = result.one("kubernetes:example.dev/v1:WeightedRoute")
    assert route.inputs["spec"]["backends"] == {"web": 60, "web-canary": 40}
    assert result.of_type(HTTPROUTE) == []
