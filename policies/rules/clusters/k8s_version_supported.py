"""k8s-version-supported: Clusters and pools run a Kubernetes minor version on the configured supported list."""

from __future__ import annotations

from pydantic import Field

from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail,
)
from policies.props import get, minor_version
from policies.rule import Fixture, M, RuleOptions, options_of, resource_rule
from policies.rules.aws import EKS_CLUSTER, EKS_NODEGROUP
from policies.rules.azure import AKS_AGENTPOOL, AKS_CLUSTER
from policies.rules.clusters import supported_from
from policies.rules.gcp import GKE_CLUSTER, GKE_NODEPOOL


class Options(RuleOptions):
    """Properties of ``k8s-version-supported`` in the policy config (a stack's gantry:policy wins)."""

    supported_versions: list[str] = Field(
        default_factory=lambda: ["1.31", "1.32", "1.33", "1.34"],
        description='a list of Kubernetes minor versions as strings, such as ["1.32", "1.33"]')


_VERSION_KEYS = {
    EKS_CLUSTER: "version",
    EKS_NODEGROUP: "version",
    GKE_CLUSTER: "minMasterVersion",
    GKE_NODEPOOL: "version",
    AKS_CLUSTER: "kubernetesVersion",
    AKS_AGENTPOOL: "orchestratorVersion",
}


def k8s_version_supported(r: Resource, s: Settings) -> Outcome:
    supported = supported_from(options_of(s, "k8s-version-supported", Options).supported_versions)
    key = _VERSION_KEYS.get(r.type)
    if key is None:
        return NOT_APPLICABLE
    value = r.props.get(key)
    if value is None:
        # Pools inherit the control plane's version, and a GKE release channel picks one for you.
        if r.type in (EKS_NODEGROUP, GKE_NODEPOOL, AKS_AGENTPOOL) or get(r.props, "releaseChannel.channel"):
            return COMPLIANT
        return fail(f"{key} must be pinned to a supported version ({', '.join(supported)}), "
                    "but it is not set, so the cloud picks one")
    minor = minor_version(value)
    if minor not in supported:
        return fail(f"{key} must be one of {', '.join(supported) or '(none configured)'}, "
                    f"but {value!r} was given")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, T_EKS, T_GKE, T_NG, bad, ok

    r = b.res
    return [
        ok("eks", r(T_EKS, b.eks_cluster())),
        ok("gke-patch-version", r(T_GKE, b.gke_cluster(minMasterVersion="1.32.4-gke.100"))),
        ok("pool-inherits", r(T_NG, b.nodegroup(version=None))),
        bad("eks-old", r(T_EKS, b.eks_cluster(version="1.27"))),
        bad("aks-unpinned", r(T_AKS, b.aks_cluster(kubernetesVersion=None))),
        bad("config-list-wins", r(T_EKS, b.eks_cluster()),
            settings=b.settings(supported_versions=("1.34",))),
    ]


RULE = resource_rule(
    "k8s-version-supported", k8s_version_supported,
    category="clusters",
    level=M,
    description="Clusters and pools run a Kubernetes minor version on the configured supported list.",
    remediation="Pin the version to one listed in gantry:policy.supportedVersions or the policy config.",
    options=Options,
    fixtures=fixtures,
)
