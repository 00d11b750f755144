"""deployment-selector-matches-template: A workload's selector is non-empty and matches its pod-template labels."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail,
)
from policies.rule import Fixture, M, resource_rule
from policies.rules.delivery import SELECTED_KINDS


def deployment_selector_matches_template(r: Resource, s: Settings) -> Outcome:
    if r.type not in SELECTED_KINDS:
        return NOT_APPLICABLE
    selector = k8s.match_labels(r.props)
    labels = k8s.template_labels(r.type, r.props)
    if not selector:
        return fail("spec.selector.matchLabels must be set (non-empty)")
    wrong = sorted(k for k, v in selector.items() if labels.get(k) != v)
    if wrong:
        return fail(f"spec.selector.matchLabels {', '.join(f'{k}={selector[k]}' for k in wrong)} must match "
                    "spec.template.metadata.labels")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("subset", r(T_DEP, b.deployment())),
        bad("mismatch", r(T_DEP, b.deployment(spec={"selector": {
            "matchLabels": {"app.kubernetes.io/name": "api"}}}))),
        bad("empty", r(T_DEP, b.deployment(spec={"selector": None}))),
    ]


RULE = resource_rule(
    "deployment-selector-matches-template", deployment_selector_matches_template,
    category="delivery",
    level=M,
    description="A workload's selector is non-empty and matches its pod-template labels.",
    remediation="Make spec.selector.matchLabels a subset of spec.template.metadata.labels.",
    fixtures=fixtures,
)
