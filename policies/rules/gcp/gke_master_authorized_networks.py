"""gke-master-authorized-networks: The GKE control plane is private or restricted to authorized networks."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import flag, get, maps, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.gcp import GKE_CLUSTER

OPEN = frozenset({"0.0.0.0/0", "::/0"})


def gke_master_authorized_networks(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    if flag(get(r.props, "privateClusterConfig.enablePrivateEndpoint")) is True:
        return COMPLIANT
    man = r.props.get("masterAuthorizedNetworksConfig")
    if not isinstance(man, Mapping):
        return fail("the control plane has a public endpoint and no masterAuthorizedNetworksConfig; enable "
                    "privateClusterConfig.enablePrivateEndpoint or list authorized cidrBlocks")
    opened = [c for c in (text(b.get("cidrBlock")) for b in maps(man.get("cidrBlocks"))) if c in OPEN]
    if opened:
        return fail("masterAuthorizedNetworksConfig.cidrBlocks must not include 0.0.0.0/0")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, bad, ok

    r = b.res
    return [
        ok("private-endpoint", r(T_GKE, b.gke_cluster())),
        ok("public-endpoint-authorized", r(T_GKE, b.gke_cluster(
            privateClusterConfig={"enablePrivateEndpoint": False}))),
        bad("public-endpoint-open", r(T_GKE, b.gke_cluster(
            privateClusterConfig={"enablePrivateEndpoint": False},
            masterAuthorizedNetworksConfig={"cidrBlocks": [{"cidrBlock": "0.0.0.0/0"}]}))),
        bad("public-endpoint-none", r(T_GKE, b.gke_cluster(
            privateClusterConfig={"enablePrivateEndpoint": False}, masterAuthorizedNetworksConfig=None))),
    ]


RULE = resource_rule(
    "gke-master-authorized-networks", gke_master_authorized_networks,
    category="clusters-gcp",
    level=M,
    description="The GKE control plane is private or restricted to authorized networks.",
    remediation="Set privateClusterConfig.enablePrivateEndpoint true or masterAuthorizedNetworksConfig.cidrBlocks.",
    fixtures=fixtures,
)
