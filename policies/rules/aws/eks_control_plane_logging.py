"""eks-control-plane-logging: All five EKS control-plane log types are on."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import strings
from policies.rule import DEV, A, Fixture, M, resource_rule
from policies.rules.aws import EKS_CLUSTER

EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def eks_control_plane_logging(r: Resource, s: Settings) -> Outcome:
    if r.type != EKS_CLUSTER:
        return NOT_APPLICABLE
    enabled = set(strings(r.props.get("enabledClusterLogTypes")))
    missing = [t for t in EKS_LOG_TYPES if t not in enabled]
    if missing:
        return fail(f"enabledClusterLogTypes must include all five log types; missing {', '.join(missing)}")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_EKS, bad, ok

    r = b.res
    return [
        ok("all-five", r(T_EKS, b.eks_cluster())),
        bad("two", r(T_EKS, b.eks_cluster(enabledClusterLogTypes=["api", "audit"]))),
    ]


RULE = resource_rule(
    "eks-control-plane-logging", eks_control_plane_logging,
    category="clusters-aws",
    level=M,
    tiers={DEV: A},
    description="All five EKS control-plane log types are on.",
    remediation="Set enabledClusterLogTypes to api, audit, authenticator, controllerManager and scheduler.",
    fixtures=fixtures,
)
