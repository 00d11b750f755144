"""node-imdsv2-required: Nodes require IMDSv2 tokens with a hop limit of at most 2."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import get, integer, mapping, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.aws import EKS_NODEGROUP, LAUNCH_TEMPLATE

INSTANCE = "aws:ec2/instance:Instance"


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_LT, T_NG, bad, ok

    r = b.res
    return [
        ok("launch-template", r(T_LT, b.launch_template())),
        ok("nodegroup-with-template", r(T_NG, b.nodegroup())),
        bad("optional-tokens", r(T_LT, b.launch_template(metadataOptions={"httpTokens": "optional"}))),
        bad("nodegroup-without-template", r(T_NG, b.nodegroup(launchTemplate=None))),
    ]


RULE = resource_rule(
    "node-imdsv2-required", node_imdsv2_required,
    category="clusters-aws",
    level=M,
    description="Nodes require IMDSv2 tokens with a hop limit of at most 2.",
    remediation="Use a launch template with metadataOptions {httpTokens: 'required', httpPutResponseHopLimit: 2}.",
    fixtures=fixtures,
)
