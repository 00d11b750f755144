"""aks-private-or-authorized-ips: The AKS API server is private or limited to authorized IP ranges."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import flag, mapping, strings
from policies.rule import Fixture, M, resource_rule
from policies.rules.azure import AKS_CLUSTER

OPEN = frozenset({"0.0.0.0/0", "*", "::/0"})


def aks_private_or_authorized_ips(r: Resource, s: Settings) -> Outcome:
    if r.type != AKS_CLUSTER:
        return NOT_APPLICABLE
    profile = mapping(r.props.get("apiServerAccessProfile"))
    if flag(profile.get("enablePrivateCluster")) is True:
        return COMPLIANT
    ranges = strings(profile.get("authorizedIPRanges"))
    if ranges and not OPEN.intersection(ranges):
        return COMPLIANT
    return fail("apiServerAccessProfile must set enablePrivateCluster true or authorizedIPRanges without "
                f"0.0.0.0/0, but {dict(profile) or 'nothing'} was given")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, bad, ok

    r = b.res
    return [
        ok("private", r(T_AKS, b.aks_cluster())),
        ok("authorized", r(T_AKS, b.aks_cluster(
            apiServerAccessProfile={"enablePrivateCluster": False, "authorizedIPRanges": ["203.0.113.0/24"]}))),
        bad("public", r(T_AKS, b.aks_cluster(apiServerAccessProfile=None))),
    ]


RULE = resource_rule(
    "aks-private-or-authorized-ips", aks_private_or_authorized_ips,
    category="clusters-azure",
    level=M,
    description="The AKS API server is private or limited to authorized IP ranges.",
    remediation="Set apiServerAccessProfile.enablePrivateCluster true or authorizedIPRanges.",
    fixtures=fixtures,
)
