"""eks-nodegroup-no-open-ssh: No node group or security group allows SSH from 0.0.0.0/0."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import integer, mapping, maps, strings
from policies.rule import Fixture, M, resource_rule
from policies.rules.aws import EKS_NODEGROUP, OPEN

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"

SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"

SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_NG, T_SG, T_SGR, bad, ok

    r = b.res
    return [
        ok("no-remote-access", r(T_NG, b.nodegroup())),
        bad("key-without-sg", r(T_NG, b.nodegroup(remoteAccess={"ec2SshKey": "ops"}))),
        bad("security-group", r(T_SG, {"ingress": [
            {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]})),
        ok("security-group-https", r(T_SG, {"ingress": [
            {"fromPort": 443, "toPort": 443, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]})),
        bad("sg-rule-all-traffic", r(T_SGR, {
            "type": "ingress", "fromPort": 0, "toPort": 0, "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]})),
    ]


RULE = resource_rule(
    "eks-nodegroup-no-open-ssh", eks_nodegroup_no_open_ssh,
    category="clusters-aws",
    level=M,
    description="No node group or security group allows SSH from 0.0.0.0/0.",
    remediation="Drop remoteAccess (use SSM Session Manager) or restrict it with sourceSecurityGroupIds.",
    fixtures=fixtures,
)
