"""Each router's rendered objects against the shape its CRD (or built-in API) requires.

The schemas below restate the parts of the published openAPIV3Schema that matter to us: required
fields, enums, bounds and patterns from Gateway API v1 (standard channel), Istio networking v1,
networking.k8s.io/v1 Ingress and SMI TrafficSplit v1alpha2 (as Linkerd's SMI extension installs it).
CEL rules the schema cannot express are asserted next to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
from k8s_helpers import (
    DESTINATION_RULE,
    HTTPROUTE,
    INGRESS,
    ROUTE_TYPES,
    TRAFFIC_SPLIT,
    VIRTUAL_SERVICE,
    make_bluegreen_spec,
    make_service_spec,
    render_service,
)

from components.spec import RouterKind, ServiceSpec

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _object(api_version: str, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


HTTPROUTE_SCHEMA = _object(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    {
        "type": "object",
        "properties": {
            "parentRefs": {
                "type": "array",
                "maxItems": 32,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "group": {"type": "string", "pattern": r"^$|" + DNS_SUBDOMAIN[1:], "maxLength": 253},
                        "kind": {"type": "string", "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"},
                        "name": {"type": "string", "minLength": 1, "maxLength": 253},
                        "namespace": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
                    },
                },
            },
            "hostnames": {
                "type": "array",
                "maxItems": 16,
                "items": {"type": "string", "maxLength": 253, "pattern": r"^(\*\.)?" + DNS_SUBDOMAIN[1:]},
            },
            "rules": {
                "type": "array",
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "properties": {
                        "matches": {
                            "type": "array",
                            "maxItems": 64,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "path": {
                                        "type": "object",
                                        "properties": {
                                            "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                            "value": {"type": "string", "maxLength": 1024},
                                        },
                                    }
                                },
                            },
                        },
                        "backendRefs": {
                            "type": "array",
                            "maxItems": 16,
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "group": {"type": "string"},
                                    "kind": {"type": "string"},
                                    "name": {"type": "string", "minLength": 1, "maxLength": 253},
                                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                    "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
)

VIRTUAL_SERVICE_SCHEMA = _object(
    "networking.istio.io/v1",
    "VirtualService",
    {
        "type": "object",
        # Istio's validation webhook refuses a VirtualService without hosts.
        "required": ["hosts"],
        "properties": {
            "hosts": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "gateways": {"type": "array", "items": {"type": "string"}},
            "http": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "route": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["destination"],
                                "properties": {
                                    "destination": {
                                        "type": "object",
                                        "required": ["host"],
                                        "properties": {
                                            "host": {"type": "string", "minLength": 1},
                                            "port": {
                                                "type": "object",
                                                "properties": {
                                                    "number": {"type": "integer", "minimum": 0,
                                                               "maximum": 4294967295}
                                                },
                                            },
                                        },
                                    },
                                    "weight": {"type": "integer", "minimum": 0, "maximum": 2147483647},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
)

DESTINATION_RULE_SCHEMA = _object(
    "networking.istio.io/v1",
    "DestinationRule",
    {
        "type": "object",
        "required": ["host"],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "trafficPolicy": {
                "type": "object",
                "properties": {
                    "tls": {
                        "type": "object",
                        "properties": {"mode": {"enum": ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]}},
                    }
                },
            },
        },
    },
)

INGRESS_SCHEMA = _object(
    "networking.k8s.io/v1",
    "Ingress",
    {
        "type": "object",
        "properties": {
            "ingressClassName": {"type": "string"},
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "host": {"type": "string", "pattern": r"^(\*\.)?" + DNS_SUBDOMAIN[1:]},
                        "http": {
                            "type": "object",
                            "required": ["paths"],
                            "properties": {
                                "paths": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["pathType", "backend"],
                                        "properties": {
                                            "path": {"type": "string", "pattern": "^/"},
                                            "pathType": {"enum": ["Exact", "Prefix", "ImplementationSpecific"]},
                                            "backend": {
                                                "type": "object",
                                                "required": ["service"],
                                                "properties": {
                                                    "service": {
                                                        "type": "object",
                                                        "required": ["name", "port"],
                                                        "properties": {
                                                            "name": {"type": "string", "pattern": DNS_LABEL},
                                                            "port": {
                                                                "type": "object",
                                                                "properties": {
                                                                    "number": {"type": "integer", "minimum": 1,
                                                                               "maximum": 65535}
                                                                },
                                                            },
                                                        },
                                                    }
                                                },
                                            },
                                        },
                                    },
                                }
                            },
                        },
                    },
                },
            },
        },
    },
)

TRAFFIC_SPLIT_SCHEMA = _object(
    "split.smi-spec.io/v1alpha2",
    "TrafficSplit",
    {
        "type": "object",
        "required": ["service", "backends"],
        "additionalProperties": False,
        "properties": {
            "service": {"type": "string", "pattern": DNS_LABEL},
            "backends": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["service", "weight"],
                    "additionalProperties": False,
                    "properties": {
                        "service": {"type": "string", "pattern": DNS_LABEL},
                        "weight": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
    },
)

SCHEMAS = {
    HTTPROUTE: HTTPROUTE_SCHEMA,
    VIRTUAL_SERVICE: VIRTUAL_SERVICE_SCHEMA,
    DESTINATION_RULE: DESTINATION_RULE_SCHEMA,
    INGRESS: INGRESS_SCHEMA,
    TRAFFIC_SPLIT: TRAFFIC_SPLIT_SCHEMA,
}

EXPECTED_KINDS = {
    RouterKind.GATEWAY_API: {HTTPROUTE: 1},
    RouterKind.ISTIO: {VIRTUAL_SERVICE: 1, DESTINATION_RULE: 2},
    RouterKind.NGINX: {INGRESS: 2},
    RouterKind.SMI: {TRAFFIC_SPLIT: 1},
}


def _engine_to_json(value: Any) -> Any:
    """The engine sends numbers as floats; the API server sees integers where they are whole."""
    if isinstance(value, Mapping):
        return {k: _engine_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_engine_to_json(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _validate(type_: str, inputs: Mapping[str, Any]) -> None:
    doc = _engine_to_json(inputs)
    jsonschema.validate(doc, SCHEMAS[type_])
    if type_ == HTTPROUTE:
        # CEL rule of HTTPBackendRef: a Service reference must name a port.
        for rule in doc["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                if ref.get("kind", "Service") == "Service" and ref.get("group", "") == "":
                    assert "port" in ref


CASES = {
    "canary-hosts": make_service_spec(canary_image="ghcr.io/acme/web:1.1.0", canary_weight=25,
                                      hostnames=["web.example.com", "*.web.example.org"]),
    "canary-no-hosts-shared-gateway": make_service_spec(gateway="infra/edge"),
}


@pytest.mark.parametrize("router", list(RouterKind))
@pytest.mark.parametrize("case", sorted(CASES))
def test_canary_routes_match_their_crd_shape(router: RouterKind, case: str) -> None:
    spec = CASES[case].model_copy(update={"router": router})
    result = render_service("web", spec)
    routes = [r for r in result.resources if r.type in ROUTE_TYPES]
    counts: dict[str, int] = {}
    for r in routes:
        counts[r.type] = counts.get(r.type, 0) + 1
        _validate(r.type, r.inputs)
    assert counts == EXPECTED_KINDS[router]


def test_gateway_parent_ref_splits_namespace_and_name() -> None:
    result = render_service("web", make_service_spec(gateway="infra/edge"))
    (parent,) = result.one(HTTPROUTE).inputs["spec"]["parentRefs"]
    assert parent == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge", "namespace": "infra"}
    local = render_service("web", make_service_spec())
    (parent,) = local.one(HTTPROUTE).inputs["spec"]["parentRefs"]
    assert parent == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gantry-gateway"}


def test_smi_splits_the_apex_service_between_stable_and_canary_by_integer_weight() -> None:
    spec = make_service_spec(router=RouterKind.SMI, canary_image="ghcr.io/acme/web:1.1.0", canary_weight=25)
    split = render_service("web", spec).one(TRAFFIC_SPLIT).inputs
    assert split["metadata"]["name"] == "web" and split["metadata"]["namespace"] == "shop"
    assert _engine_to_json(split["spec"]) == {"service": "web", "backends": [
        {"service": "web", "weight": 75}, {"service": "web-canary", "weight": 25}]}


def test_istio_splits_mesh_traffic_too_and_pins_mutual_tls() -> None:
    spec = make_service_spec(router=RouterKind.ISTIO, canary_image="ghcr.io/acme/web:1.1.0", canary_weight=5)
    result = render_service("web", spec)
    vs = result.one(VIRTUAL_SERVICE).inputs["spec"]
    assert vs["hosts"] == ["web.example.com", "web.shop.svc.cluster.local"]
    assert vs["gateways"] == ["gantry-gateway", "mesh"]
    for dr in result.of_type(DESTINATION_RULE):
        assert dr.inputs["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"


@pytest.mark.parametrize("router", list(RouterKind))
def test_bluegreen_routes_the_active_service_only(router: RouterKind) -> None:
    spec: ServiceSpec = make_bluegreen_spec(router=router, hostnames=["api.example.com"])
    result = render_service("api", spec)
    routes = [r for r in result.resources if r.type in ROUTE_TYPES]
    assert routes
    for r in routes:
        _validate(r.type, r.inputs)
        text = repr(r.inputs)
        assert "api-preview" not in text and "canary" not in text


@pytest.mark.parametrize(
    ("type_", "break_it"),
    [
        (HTTPROUTE, lambda d: d["spec"]["rules"][0]["backendRefs"][0].pop("name")),
        (HTTPROUTE, lambda d: d["spec"]["rules"][0]["backendRefs"][0].update(weight=-1)),
        (VIRTUAL_SERVICE, lambda d: d["spec"]["http"][0]["route"][0]["destination"].pop("host")),
        (DESTINATION_RULE, lambda d: d["spec"].pop("host")),
        (INGRESS, lambda d: d["spec"]["rules"][0]["http"]["paths"][0].pop("pathType")),
        (TRAFFIC_SPLIT, lambda d: d["spec"]["backends"][0].update(weight="750m")),
    ],
)
def test_the_shape_checks_catch_a_missing_required_field(type_: str, break_it: Any) -> None:
    router = {HTTPROUTE: RouterKind.GATEWAY_API, INGRESS: RouterKind.NGINX,
              TRAFFIC_SPLIT: RouterKind.SMI}.get(type_, RouterKind.ISTIO)
    result = render_service("web", make_service_spec(router=router))
    doc = _engine_to_json(result.of_type(type_)[0].inputs)
    _validate(type_, doc)
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError):
        _validate(type_, doc)
