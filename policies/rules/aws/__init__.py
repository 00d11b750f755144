"""AWS cluster rules over raw ``aws:*`` resources (what Gantry's EKS component and raw programs register).

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

from collections.abc import Mapping

from policies.props import flag, mapping, maps, seq

CATEGORY = "clusters-aws"

EKS_CLUSTER = "aws:eks/cluster:Cluster"

EKS_NODEGROUP = "aws:eks/nodeGroup:NodeGroup"

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"

OPEN = frozenset({"0.0.0.0/0", "::/0"})


def launch_template_disks_encrypted(props: Mapping[str, object]) -> list[str]:
    """Problems with a launch template's EBS volumes (shared with the cross-cloud disk rule)."""
    out: list[str] = []
    for i, bdm in enumerate(maps(props.get("blockDeviceMappings"))):
        ebs = mapping(bdm.get("ebs"))
        if ebs and flag(ebs.get("encrypted")) is not True:
            out.append(f"blockDeviceMappings[{i}].ebs.encrypted must be true")
    if not seq(props.get("blockDeviceMappings")):
        out.append("blockDeviceMappings must declare the root volume with ebs.encrypted true (and a kmsKeyId)")
    return out
