"""Cluster rules that hold on every cloud: supported versions, encrypted node disks, network policy."""

from __future__ import annotations

import json
from collections.abc import Sequence

from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    StackOutcome,
    fail,
    fail_all,
)
from policies.props import flag, get, mapping, maps, minor_version, text
from policies.rules.aws import EKS_CLUSTER, EKS_NODEGROUP, LAUNCH_TEMPLATE, launch_template_disks_encrypted
from policies.rules.azure import AKS_AGENTPOOL, AKS_CLUSTER
from policies.rules.gcp import GKE_CLUSTER, GKE_NODEPOOL

EKS_ADDON = "aws:eks/addon:Addon"

_VERSION_KEYS = {
    EKS_CLUSTER: "version",
    EKS_NODEGROUP: "version",
    GKE_CLUSTER: "minMasterVersion",
    GKE_NODEPOOL: "version",
    AKS_CLUSTER: "kubernetesVersion",
    AKS_AGENTPOOL: "orchestratorVersion",
}


def k8s_version_supported(r: Resource, s: Settings) -> Outcome:
    key = _VERSION_KEYS.get(r.type)
    if key is None:
        return NOT_APPLICABLE
    value = r.props.get(key)
    if value is None:
        # Pools inherit the control plane's version, and a GKE release channel picks one for you.
        if r.type in (EKS_NODEGROUP, GKE_NODEPOOL, AKS_AGENTPOOL) or get(r.props, "releaseChannel.channel"):
            return COMPLIANT
        return fail(f"{key} must be pinned to a supported version ({', '.join(s.supported_versions)}), "
                    "but it is not set, so the cloud picks one")
    minor = minor_version(value)
    if minor not in s.supported_versions:
        return fail(f"{key} must be one of {', '.join(s.supported_versions) or '(none configured)'}, "
                    f"but {value!r} was given")
    return COMPLIANT


def node_disk_encryption(r: Resource, s: Settings) -> Outcome:
    if r.type == LAUNCH_TEMPLATE:
        return fail_all(launch_template_disks_encrypted(r.props))
    if r.type == EKS_NODEGROUP:
        # Without a launch template the volume falls back to the account default, which may be plaintext.
        if not mapping(r.props.get("launchTemplate")):
            return fail("a node group without a launch template cannot guarantee encrypted volumes; use a "
                        "launch template whose blockDeviceMappings set ebs.encrypted true")
        return COMPLIANT
    if r.type == GKE_NODEPOOL:
        if text(get(r.props, "nodeConfig.bootDiskKmsKey")):
            return COMPLIANT
        return fail("nodeConfig.bootDiskKmsKey must name a Cloud KMS key (CMEK boot disks)")
    if r.type == GKE_CLUSTER:
        if flag(r.props.get("removeDefaultNodePool")) is True or not mapping(r.props.get("nodeConfig")):
            return NOT_APPLICABLE
        if text(get(r.props, "nodeConfig.bootDiskKmsKey")):
            return COMPLIANT
        return fail("nodeConfig.bootDiskKmsKey must name a Cloud KMS key for the default pool")
    if r.type == AKS_CLUSTER:
        if text(r.props.get("diskEncryptionSetID")):
            return COMPLIANT
        pools = maps(r.props.get("agentPoolProfiles"))
        plain = [text(p.get("name")) or str(i) for i, p in enumerate(pools)
                 if flag(p.get("enableEncryptionAtHost")) is not True]
        if plain:
            return fail("diskEncryptionSetID must be set, or enableEncryptionAtHost true on every pool; "
                        f"not encrypted: {', '.join(plain)}")
        return COMPLIANT
    if r.type == AKS_AGENTPOOL:
        if flag(r.props.get("enableEncryptionAtHost")) is True:
            return COMPLIANT
        return fail("enableEncryptionAtHost must be true")
    return NOT_APPLICABLE


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


def supported_from(values: Sequence[object]) -> tuple[str, ...]:
    """Normalise a configured list (``[1.32, "1.33"]``) to minor-version strings."""
    return tuple(v for v in (minor_version(x) for x in values) if v is not None)
