"""gke-private-cluster: GKE nodes are private (no public IPs)."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import flag, get
from policies.rule import Fixture, M, resource_rule
from policies.rules.gcp import GKE_CLUSTER


def gke_private_cluster(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    if flag(get(r.props, "privateClusterConfig.enablePrivateNodes")) is True:
        return COMPLIANT
    return fail("privateClusterConfig.enablePrivateNodes must be true, so nodes get no public IPs")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, bad, ok

    r = b.res
    return [
        ok("private-nodes", r(T_GKE, b.gke_cluster())),
        bad("public-nodes", r(T_GKE, b.gke_cluster(privateClusterConfig=None))),
    ]


RULE = resource_rule(
    "gke-private-cluster", gke_private_cluster,
    category="clusters-gcp",
    level=M,
    description="GKE nodes are private (no public IPs).",
    remediation="Set privateClusterConfig.enablePrivateNodes true.",
    fixtures=fixtures,
)
