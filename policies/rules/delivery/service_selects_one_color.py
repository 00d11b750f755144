"""service-selects-one-color: A Service in front of blue/green Deployments selects exactly one color."""

from __future__ import annotations

from collections.abc import Sequence

from policies import k8s
from policies.model import (
    COMPLIANT,
    Resource,
    Settings,
    StackOutcome,
    fail,
)
from policies.rule import Fixture, M, stack_rule
from policies.rules.delivery import SELECTED_KINDS

COLORS = frozenset({"blue", "green"})


def service_selects_one_color(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    """A Service whose selector reaches pods of both colors sends live traffic to the idle color."""
    workloads = [r for r in resources if r.type in SELECTED_KINDS]
    out = []
    for svc in resources:
        if svc.type != k8s.SERVICE:
            continue
        selector = k8s.match_labels(svc.props, "spec.selector")
        ns = k8s.namespace_of(svc)
        colors: set[str] = set()
        matched = False
        for w in workloads:
            labels = k8s.template_labels(w.type, w.props)
            if k8s.namespace_of(w) == ns and k8s.selects(selector, labels):
                matched = True
                colors.update(v for v in labels.values() if v in COLORS)
        if not matched or not colors:
            continue
        out.append(StackOutcome(svc.urn, COMPLIANT if len(colors) == 1 else fail(
            f"spec.selector {selector} selects pods of {' and '.join(sorted(colors))}; add the color label "
            "so it selects exactly one")))
    return out


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_SVC, bad, ok

    r = b.res
    _blue = r(T_DEP, b.deployment("web-blue", b.app_labels(color="blue")), name="web-blue")
    _green = r(T_DEP, b.deployment("web-green", b.app_labels(color="green")), name="web-green")
    return [
        ok("active-blue", _blue, _green,
           r(T_SVC, b.service(selector=b.app_labels(color="blue")), name="web"), subject=2),
        bad("both", _blue, _green, r(T_SVC, b.service(), name="web"), subject=2),
    ]


RULE = stack_rule(
    "service-selects-one-color", service_selects_one_color,
    category="delivery",
    level=M,
    description="A Service in front of blue/green Deployments selects exactly one color.",
    remediation="Add the color label to the Service selector.",
    fixtures=fixtures,
)
