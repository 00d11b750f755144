"""k8s-recommended-labels: Workloads and Services carry the app.kubernetes.io recommended labels."""

from __future__ import annotations

from pydantic import Field

from policies import k8s
from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.rule import A, Fixture, RuleOptions, options_of, resource_rule


class Options(RuleOptions):
    """Properties of ``k8s-recommended-labels`` in the policy config."""

    labels: list[str] = Field(
        default_factory=lambda: ["app.kubernetes.io/name", "app.kubernetes.io/instance",
                                 "app.kubernetes.io/managed-by"],
        description='a list of label keys as strings, such as ["app.kubernetes.io/name"]')


LABELLED = k8s.WORKLOADS | {k8s.SERVICE}


def k8s_recommended_labels(r: Resource, s: Settings) -> Outcome:
    if r.type not in LABELLED:
        return NOT_APPLICABLE
    present = k8s.labels(r.props)
    missing = [label for label in options_of(s, "k8s-recommended-labels", Options).labels if not present.get(label)]
    if missing:
        return fail(f"metadata.labels must include {', '.join(missing)}")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_SVC, bad, ok

    r = b.res
    return [
        ok("all", r(T_DEP, b.deployment())),
        bad("none", r(T_SVC, b.service(metadata={"labels": None}))),
    ]


RULE = resource_rule(
    "k8s-recommended-labels", k8s_recommended_labels,
    category="labels",
    level=A,
    description="Workloads and Services carry the app.kubernetes.io recommended labels.",
    remediation="Add app.kubernetes.io/name, instance and managed-by to metadata.labels.",
    options=Options,
    fixtures=fixtures,
)
