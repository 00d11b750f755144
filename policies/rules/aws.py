"""AWS cluster rules over raw ``aws:*`` resources (what Gantry's EKS component and raw programs register)."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import flag, get, integer, mapping, maps, seq, strings, text

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODEGROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN = frozenset({"0.0.0.0/0", "::/0"})


def eks_endpoint_private(r: Resource, s: Settings) -> Outcome:
    if r.type != EKS_CLUSTER:
        return NOT_APPLICABLE
    vpc = mapping(r.props.get("vpcConfig"))
    # AWS turns the public endpoint on when endpointPublicAccess is not given.
    public = flag(vpc.get("endpointPublicAccess"))
    if public is False:
        return COMPLIANT
    cidrs = strings(vpc.get("publicAccessCidrs"))
    if not cidrs or OPEN.intersection(cidrs):
        shown = cidrs or ["0.0.0.0/0 (AWS default)"]
        return fail(f"vpcConfig.endpointPublicAccess is on and open to {', '.join(shown)}; set it to false "
                    "and endpointPrivateAccess to true, or restrict publicAccessCidrs")
    return COMPLIANT


def eks_secrets_encryption(r: Resource, s: Settings) -> Outcome:
    if r.type != EKS_CLUSTER:
        return NOT_APPLICABLE
    raw = r.props.get("encryptionConfig")
    # pulumi-aws 7 takes one object; older programs pass a list of them.
    configs = [mapping(raw)] if isinstance(raw, Mapping) else maps(raw)
    for cfg in configs:
        if "secrets" in strings(cfg.get("resources")) and get(cfg, "provider.keyArn"):
            return COMPLIANT
    return fail("encryptionConfig must encrypt 'secrets' with a KMS key (provider.keyArn), but it is not set")


def eks_control_plane_logging(r: Resource, s: Settings) -> Outcome:
    if r.type != EKS_CLUSTER:
        return NOT_APPLICABLE
    enabled = set(strings(r.props.get("enabledClusterLogTypes")))
    missing = [t for t in EKS_LOG_TYPES if t not in enabled]
    if missing:
        return fail(f"enabledClusterLogTypes must include all five log types; missing {', '.join(missing)}")
    return COMPLIANT


def _ssh_open(from_port: object, to_port: object, protocol: object, cidrs: list[str]) -> bool:
    proto = str(protocol if protocol is not None else "")
    if not OPEN.intersection(cidrs):
        return False
    if proto in ("-1", "all"):
        return True
    if proto not in ("tcp", "6"):
        return False
    low, high = integer(from_port), integer(to_port)
    if low is None or high is None:
        return False
    return low <= 22 <= high or (low == 0 and high == 0)


def eks_nodegroup_no_open_ssh(r: Resource, s: Settings) -> Outcome:
    if r.type == EKS_NODEGROUP:
        remote = mapping(r.props.get("remoteAccess"))
        # With a key and no source security groups, EKS opens port 22 to the whole internet.
        if remote.get("ec2SshKey") and not strings(remote.get("sourceSecurityGroupIds")):
            return fail("remoteAccess.ec2SshKey is set without sourceSecurityGroupIds, which opens SSH "
                        "to 0.0.0.0/0; remove remoteAccess (use SSM) or set sourceSecurityGroupIds")
        return COMPLIANT
    if r.type == SECURITY_GROUP:
        bad = [i for i, rule in enumerate(maps(r.props.get("ingress")))
               if _ssh_open(rule.get("fromPort"), rule.get("toPort"), rule.get("protocol"),
                            strings(rule.get("cidrBlocks")) + strings(rule.get("ipv6CidrBlocks")))]
        return fail_all([f"ingress[{i}] allows SSH (22) from 0.0.0.0/0" for i in bad])
    if r.type == SG_RULE:
        if r.props.get("type") != "ingress":
            return NOT_APPLICABLE
        cidrs = strings(r.props.get("cidrBlocks")) + strings(r.props.get("ipv6CidrBlocks"))
        if _ssh_open(r.props.get("fromPort"), r.props.get("toPort"), r.props.get("protocol"), cidrs):
            return fail("this ingress rule allows SSH (22) from 0.0.0.0/0")
        return COMPLIANT
    if r.type == SG_INGRESS:
        cidrs = strings([r.props.get("cidrIpv4"), r.props.get("cidrIpv6")])
        if _ssh_open(r.props.get("fromPort"), r.props.get("toPort"), r.props.get("ipProtocol"), cidrs):
            return fail("this ingress rule allows SSH (22) from 0.0.0.0/0")
        return COMPLIANT
    return NOT_APPLICABLE


def _tokens(metadata: Mapping[str, object]) -> str | None:
    return text(metadata.get("httpTokens"))


def node_imdsv2_required(r: Resource, s: Settings) -> Outcome:
    if r.type in (LAUNCH_TEMPLATE, INSTANCE):
        tokens = _tokens(mapping(r.props.get("metadataOptions")))
        if tokens != "required":
            return fail(f"metadataOptions.httpTokens must be 'required' (IMDSv2), but {tokens!r} was given")
        hops = integer(get(r.props, "metadataOptions.httpPutResponseHopLimit"))
        if hops is not None and hops > 2:
            return fail(f"metadataOptions.httpPutResponseHopLimit must be <= 2, but {hops} was given")
        return COMPLIANT
    if r.type == EKS_NODEGROUP:
        if not mapping(r.props.get("launchTemplate")):
            return fail("a managed node group without a launch template allows IMDSv1; set launchTemplate to "
                        "one with metadataOptions.httpTokens 'required'")
        return COMPLIANT
    return NOT_APPLICABLE


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
