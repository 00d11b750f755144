"""Validation of delivered services: spec checks, construction-time checks and the stack-config path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from k8s_helpers import make_bluegreen_spec, make_service_spec
from pydantic import ValidationError

from components.k8s import BlueGreenService, CanaryService, build_service, router_for
from components.k8s.checks import delivery_violations
from components.k8s.routers import ROUTERS, Backend, RouteContext
from components.spec import RouterKind, ServiceSpec, Strategy, Tier
from components.validation import SpecError
from infra.config import ConfigError, load_stack, parse
from infra.render import render_callable

BASE = {"cloud": "local", "environment": "dev", "tier": "dev"}


def config_error(service: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as exc:
        parse({**BASE, "services": {"web": {"image": "ghcr.io/acme/web:1.0.0", "namespace": "web", **service}}},
              source="stacks/Pulumi.dev.yaml")
    assert len(exc.value.problems) == 1, exc.value.problems
    return exc.value.problems[0]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({"canaryWeight": 101, "canaryImage": "ghcr.io/acme/web:2.0.0"},
         "gantry:services.web.canaryWeight must be an integer from 0 to 100, but 101 was given"),
        ({"canaryWeight": -1},
         "gantry:services.web.canaryWeight must be an integer from 0 to 100, but -1 was given"),
        ({"strategy": "bluegreen", "activeColor": "red"},
         "gantry:services.web.activeColor must be one of 'blue' or 'green', but 'red' was given"),
        ({"canaryWeight": 10},
         "gantry:services.web.canaryImage must be set when canaryWeight is above 0 (10), but None was given"),
        ({"strategy": "bluegreen", "replicas": 2, "idleReplicas": 3},
         "gantry:services.web.idleReplicas must be <= replicas (2), but 3 was given"),
        ({"port": 8080, "liveness": {"port": 9000}},
         "gantry:services.web.liveness.port must be a container port (8080), but 9000 was given"),
        ({"router": "traefik"},
         "gantry:services.web.router must be one of 'gateway-api', 'istio', 'nginx' or 'smi', but 'traefik' was given"),
        ({"image": "ghcr.io/acme/web:latest"},
         "gantry:services.web.image must be an image pinned by a tag other than 'latest' or by a sha256 "
         "digest, but 'ghcr.io/acme/web:latest' was given"),
        ({"image": "ghcr.io/acme/web"},
         "gantry:services.web.image must be an image pinned by a tag other than 'latest' or by a sha256 "
         "digest, but 'ghcr.io/acme/web' was given"),
        ({"namespace": "default"},
         "gantry:services.web.namespace must be an explicit namespace other than 'default', but 'default' was given"),
        ({"resources": {"memoryRequest": "1Gi", "memoryLimit": "512Mi"}},
         "gantry:services.web.resources.memoryLimit must be >= memoryRequest (1Gi), but '512Mi' was given"),
        ({"hostnames": ["Web_Example"]},
         "gantry:services.web.hostnames[0] must be a DNS name such as web.example.com (optionally *.), "
         "but 'Web_Example' was given"),
        ({"strategy": "bluegreen", "canaryWeight": 20, "canaryImage": "ghcr.io/acme/web:2.0.0"},
         "gantry:services.web.canaryWeight must be 0 for strategy bluegreen (switch with activeColor), "
         "but 20 was given"),
        ({"greenImage": "ghcr.io/acme/web:2.0.0"},
         "gantry:services.web.greenImage must be unset for strategy canary (use image/canaryImage), "
         "but 'ghcr.io/acme/web:2.0.0' was given"),
        ({"liveness": {"path": "/ready", "initialDelaySeconds": 0}},
         "gantry:services.web.liveness must be different from readiness, but '/ready' was given"),
    ],
)
def test_stack_config_errors_name_the_key_and_the_fix(service: dict[str, object], expected: str) -> None:
    assert config_error(service) == expected


def test_spec_errors_use_the_template_when_built_in_python() -> None:
    with pytest.raises(ValidationError, match=r"canaryWeight must be an integer from 0 to 100, but 250 was given"):
        make_service_spec(canary_weight=250, canary_image="ghcr.io/acme/web:2.0.0")


def _unchecked(spec: ServiceSpec, **changes: object) -> ServiceSpec:
    """Bypass pydantic validation, as a caller using model_construct/model_copy could."""
    return spec.model_copy(update=changes)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: CanaryService("web", _unchecked(make_service_spec(), canary_weight=150), tier=Tier.DEV),
         "canaryWeight must be an integer from 0 to 100, but 150 was given"),
        (lambda: CanaryService("web", _unchecked(make_service_spec(), canary_weight=5), tier=Tier.DEV),
         "canaryImage must be set when canaryWeight is above 0 (5), but None was given"),
        (lambda: BlueGreenService("api", _unchecked(make_bluegreen_spec(replicas=2), idle_replicas=4), tier=Tier.DEV),
         "idleReplicas must be <= replicas (2), but 4 was given"),
        (lambda: BlueGreenService("api", make_service_spec(), tier=Tier.DEV),
         "strategy must be bluegreen for this component, but 'canary' was given"),
        (lambda: CanaryService("Web_1", make_service_spec(), tier=Tier.DEV),
         "name must be a DNS label of at most 40 lowercase letters, digits and '-', but 'Web_1' was given"),
        (lambda: build_service("web", make_service_spec(replicas=1), tier=Tier.PROD),
         "replicas must be >= 2 in prod, but 1 was given"),
        (lambda: build_service("api", make_bluegreen_spec(hpa={"enabled": True, "min_replicas": 1}), tier=Tier.PROD),
         "hpa.minReplicas must be >= 2 in prod, but 1 was given"),
    ],
)
def test_components_validate_on_construction(build: Callable[[], object], expected: str) -> None:
    with pytest.raises(SpecError) as exc:
        build()
    assert str(exc.value) == expected


def test_single_replica_and_hpa_min_1_are_fine_outside_prod() -> None:
    spec = make_service_spec(replicas=1, hpa={"enabled": True, "min_replicas": 1, "max_replicas": 3})

    def program() -> None:
        build_service("web", spec, tier=Tier.DEV)

    assert render_callable(program).of_type("gantry:k8s:CanaryService")


def test_a_refused_component_registers_nothing() -> None:
    def program() -> None:
        with pytest.raises(SpecError):
            build_service("web", make_service_spec(replicas=1), tier=Tier.PROD)

    result = render_callable(program)
    assert [r.type for r in result.resources] == ["pulumi:pulumi:Stack"]


def test_unknown_router_lists_the_valid_ones() -> None:
    with pytest.raises(SpecError) as exc:
        router_for("traefik")
    assert str(exc.value) == "router must be one of gateway-api, istio, nginx, smi, but 'traefik' was given"
    assert {router_for(k.value).kind for k in RouterKind} == set(ROUTERS) == set(RouterKind)


@pytest.mark.parametrize("weights", [(90, 20), (50, -50), (101, -1)])
def test_route_context_refuses_weights_that_do_not_split_100(weights: tuple[int, int]) -> None:
    with pytest.raises(SpecError, match="backends must be weights from 0 to 100 that sum to 100"):
        RouteContext("web", "web", (), "gw", 80, (Backend("web", weights[0]), Backend("web-canary", weights[1])))


def test_stacks_ship_a_canary_web_and_a_bluegreen_api(repo: Path) -> None:
    for stack in ("dev", "staging", "prod", "prod-gcp", "prod-azure"):
        cfg = load_stack(stack, repo / "stacks")
        assert cfg.services["web"].strategy is Strategy.CANARY, stack
        assert cfg.services["api"].strategy is Strategy.BLUEGREEN, stack
        for name, svc in cfg.services.items():
            # Every shipped service must also pass the tier's construction-time checks.
            assert delivery_violations(name, svc, cfg.tier, svc.strategy) == [], (stack, name)


def test_only_one_service_may_create_a_shared_namespace() -> None:
    services = {
        "web": {"image": "ghcr.io/acme/web:1.0.0", "namespace": "shop"},
        "api": {"image": "ghcr.io/acme/api:1.0.0", "namespace": "shop", "strategy": "bluegreen"},
    }
    with pytest.raises(ConfigError) as exc:
        parse({**BASE, "services": services}, source="stacks/Pulumi.dev.yaml")
    assert exc.value.problems == [
        "gantry:services.api.createNamespace must be false when service web already creates namespace shop, "
        "but True was given"
    ]
    services["api"]["createNamespace"] = False
    cfg = parse({**BASE, "services": services}, source="stacks/Pulumi.dev.yaml")
    assert [s.create_namespace for s in cfg.services.values()] == [True, False]
