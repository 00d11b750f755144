"""network-policy-enforced: The cluster enforces NetworkPolicy (Dataplane V2 counts)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from policies.model import (
    COMPLIANT,
    Resource,
    Settings,
    StackOutcome,
    fail,
)
from policies.props import flag, get, mapping, text
from policies.rule import Fixture, M, stack_rule
from policies.rules.aws import EKS_CLUSTER
from policies.rules.azure import AKS_CLUSTER
from policies.rules.gcp import GKE_CLUSTER

EKS_ADDON = "aws:eks/addon:Addon"


def _vpc_cni_enforces(addon: Resource) -> bool:
    if addon.props.get("addonName") != "vpc-cni":
        return False
    raw = addon.props.get("configurationValues")
    try:
        values = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return False
    return flag(mapping(values).get("enableNetworkPolicy")) is True


def _addon_targets(addon: Resource, cluster: Resource) -> bool:
    if cluster.urn in addon.dependencies:
        return True
    name = cluster.props.get("name")
    return name is not None and addon.props.get("clusterName") == name


def network_policy_enforced(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    out: list[StackOutcome] = []
    addons = [r for r in resources if r.type == EKS_ADDON]
    for r in resources:
        if r.type == EKS_CLUSTER:
            ok = any(_vpc_cni_enforces(a) and _addon_targets(a, r) for a in addons)
            out.append(StackOutcome(r.urn, COMPLIANT if ok else fail(
                "no vpc-cni addon with configurationValues enableNetworkPolicy 'true' targets this cluster, "
                "so NetworkPolicies are not enforced")))
        elif r.type == GKE_CLUSTER:
            dpv2 = r.props.get("datapathProvider") == "ADVANCED_DATAPATH"
            calico = flag(get(r.props, "networkPolicy.enabled")) is True
            out.append(StackOutcome(r.urn, COMPLIANT if dpv2 or calico else fail(
                "datapathProvider must be 'ADVANCED_DATAPATH' (Dataplane V2) or networkPolicy.enabled true")))
        elif r.type == AKS_CLUSTER:
            policy = text(get(r.props, "networkProfile.networkPolicy"))
            dataplane = text(get(r.props, "networkProfile.networkDataplane"))
            ok = policy in ("azure", "calico", "cilium") or dataplane == "cilium"
            out.append(StackOutcome(r.urn, COMPLIANT if ok else fail(
                "networkProfile.networkPolicy must be azure, calico or cilium (or networkDataplane cilium), "
                f"but {policy!r} was given")))
    return out


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_ADDON, T_AKS, T_EKS, T_GKE, bad, ok

    r = b.res
    _eks = r(T_EKS, b.eks_cluster(), name="prod")
    return [
        ok("eks-vpc-cni", _eks, r(T_ADDON, {
            "addonName": "vpc-cni", "clusterName": "other",
            "configurationValues": json.dumps({"enableNetworkPolicy": "true"})}, name="cni", dependencies=(_eks.urn,))),
        bad("eks-no-addon", _eks),
        ok("gke-dataplane-v2", r(T_GKE, b.gke_cluster())),
        bad("gke-legacy", r(T_GKE, b.gke_cluster(datapathProvider="LEGACY_DATAPATH"))),
        ok("aks-cilium", r(T_AKS, b.aks_cluster(
            networkProfile={"networkPolicy": None, "networkDataplane": "cilium"}))),
        bad("aks-none", r(T_AKS, b.aks_cluster(networkProfile={"networkPolicy": None}))),
    ]


RULE = stack_rule(
    "network-policy-enforced", network_policy_enforced,
    category="clusters",
    level=M,
    description="The cluster enforces NetworkPolicy (Dataplane V2 counts).",
    remediation="EKS: vpc-cni addon with enableNetworkPolicy; GKE: ADVANCED_DATAPATH; AKS: networkPolicy azure/cilium.",
    fixtures=fixtures,
)
