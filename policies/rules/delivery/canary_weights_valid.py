"""canary-weights-valid: Traffic weights are integers 0..100 that sum to 100."""

from __future__ import annotations

from collections.abc import Mapping

from policies import k8s
from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail,
    fail_all,
)
from policies.props import get, integer, mapping, maps
from policies.rule import Fixture, M, resource_rule


def _weights(path: str, backends: list[Mapping[str, object]], *, require_100: bool) -> list[str]:
    if len(backends) < 2:
        return []
    raw = [b.get("weight") for b in backends]
    weights = [integer(w) for w in raw]
    out = []
    for i, (w, given) in enumerate(zip(weights, raw, strict=True)):
        if given is not None and (w is None or not 0 <= w <= 100):
            out.append(f"{path}[{i}].weight must be an integer from 0 to 100, but {given!r} was given")
    if out:
        return out
    explicit = [w for w in weights if w is not None]
    if len(explicit) == len(weights) or require_100:
        total = sum(w if w is not None else 0 for w in weights)
        if total != 100:
            out.append(f"{path} weights must sum to 100, but they sum to {total}")
    return out


def canary_weights_valid(r: Resource, s: Settings) -> Outcome:
    if r.type in k8s.HTTPROUTE_TYPES:
        out = []
        for i, rule in enumerate(maps(get(r.props, "spec.rules"))):
            out += _weights(f"spec.rules[{i}].backendRefs", maps(rule.get("backendRefs")), require_100=False)
        return fail_all(out)
    if r.type in k8s.VIRTUALSERVICE_TYPES:
        out = []
        for i, route in enumerate(maps(get(r.props, "spec.http"))):
            out += _weights(f"spec.http[{i}].route", maps(route.get("route")), require_100=True)
        return fail_all(out)
    if r.type == k8s.INGRESS:
        annotations = mapping(get(r.props, "metadata.annotations"))
        if str(annotations.get("nginx.ingress.kubernetes.io/canary")).lower() != "true":
            return NOT_APPLICABLE
        weight = integer(annotations.get("nginx.ingress.kubernetes.io/canary-weight"))
        if weight is None or not 0 <= weight <= 100:
            return fail("nginx.ingress.kubernetes.io/canary-weight must be an integer from 0 to 100, but "
                        f"{annotations.get('nginx.ingress.kubernetes.io/canary-weight')!r} was given")
        return COMPLIANT
    return NOT_APPLICABLE


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_ING, T_ROUTE, T_VS, bad, ok

    r = b.res
    return [
        ok("route-90-10", r(T_ROUTE, b.httproute(90, 10))),
        ok("single-backend", r(T_ROUTE, b.httproute(None))),
        bad("route-sum-110", r(T_ROUTE, b.httproute(100, 10))),
        bad("negative", r(T_ROUTE, b.httproute(-10, 110))),
        bad("istio-sum-90", r(T_VS, {"metadata": {"namespace": "web"}, "spec": {"http": [{"route": [
            {"destination": {"host": "web", "subset": "stable"}, "weight": 80},
            {"destination": {"host": "web", "subset": "canary"}, "weight": 10}]}]}})),
        ok("nginx-25", r(T_ING, {"metadata": {"namespace": "web", "annotations": {
            "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "25"}}})),
        bad("nginx-150", r(T_ING, {"metadata": {"namespace": "web", "annotations": {
            "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "150"}}})),
    ]


RULE = resource_rule(
    "canary-weights-valid", canary_weights_valid,
    category="delivery",
    level=M,
    description="Traffic weights are integers 0..100 that sum to 100.",
    remediation="Fix the HTTPRoute backendRefs, VirtualService route or nginx canary-weight.",
    fixtures=fixtures,
)
