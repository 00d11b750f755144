"""node-disk-encryption: Node disks are encrypted with a customer-managed key."""

from __future__ import annotations

from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail,
    fail_all,
)
from policies.props import flag, get, mapping, maps, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.aws import EKS_NODEGROUP, LAUNCH_TEMPLATE, launch_template_disks_encrypted
from policies.rules.azure import AKS_AGENTPOOL, AKS_CLUSTER
from policies.rules.gcp import GKE_CLUSTER, GKE_NODEPOOL


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, T_AP, T_GNP, T_LT, bad, ok

    r = b.res
    return [
        ok("launch-template", r(T_LT, b.launch_template())),
        ok("gke-pool", r(T_GNP, b.gke_nodepool())),
        ok("aks-des", r(T_AKS, b.aks_cluster())),
        bad("plain-ebs", r(T_LT, b.launch_template(
            blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 50}}]))),
        bad("gke-google-managed", r(T_GNP, b.gke_nodepool(nodeConfig={"bootDiskKmsKey": None}))),
        bad("agent-pool", r(T_AP, b.agent_pool(enableEncryptionAtHost=False))),
    ]


RULE = resource_rule(
    "node-disk-encryption", node_disk_encryption,
    category="clusters",
    level=M,
    description="Node disks are encrypted with a customer-managed key.",
    remediation="EKS: launch template with encrypted EBS; GKE: nodeConfig.bootDiskKmsKey; AKS: diskEncryptionSetID.",
    fixtures=fixtures,
)
