"""kms-policy-no-wildcard-principal: No key policy or key IAM grants to everyone."""

from __future__ import annotations

import json
from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import get, mapping, maps, strings, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.keys import AWS_KEY, AZURE_VAULT

AWS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"

GCP_KEY_IAM = frozenset({
    "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:kms/keyRingIAMBinding:KeyRingIAMBinding",
    "gcp:kms/keyRingIAMMember:KeyRingIAMMember",
})


def _wildcard_statements(policy: object) -> list[str]:
    doc: object = policy
    if isinstance(policy, str):
        try:
            doc = json.loads(policy)
        except ValueError:
            return []
    statements = get(doc, "Statement")
    items = [statements] if isinstance(statements, Mapping) else maps(statements)
    out = []
    for i, st in enumerate(items):
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        principal = st.get("Principal")
        values = [principal] if isinstance(principal, str) else strings(mapping(principal).get("AWS"))
        if isinstance(mapping(principal).get("AWS"), str):
            values = [str(mapping(principal)["AWS"])]
        if "*" in values:
            out.append(text(st.get("Sid")) or f"Statement[{i}]")
    return out


def kms_policy_no_wildcard_principal(r: Resource, s: Settings) -> Outcome:
    if r.type in (AWS_KEY, AWS_KEY_POLICY):
        if r.props.get("policy") is None:
            return NOT_APPLICABLE if r.type == AWS_KEY_POLICY else COMPLIANT
        bad = _wildcard_statements(r.props.get("policy"))
        if bad:
            return fail(f"policy allows Principal '*' without a Condition in {', '.join(bad)}")
        return COMPLIANT
    if r.type in GCP_KEY_IAM:
        members = strings(r.props.get("members")) + strings([r.props.get("member")])
        public = [m for m in members if m in ("allUsers", "allAuthenticatedUsers")]
        if public:
            return fail(f"key IAM must not grant to {', '.join(public)}")
        return COMPLIANT
    if r.type == AZURE_VAULT:
        policies = maps(get(r.props, "properties.accessPolicies"))
        if any(p.get("objectId") == "*" for p in policies):
            return fail("properties.accessPolicies must not grant objectId '*'")
        return COMPLIANT
    return NOT_APPLICABLE


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GIAM, T_KMS, bad, ok

    r = b.res
    return [
        ok("named-root", r(T_KMS, b.kms_key())),
        ok("wildcard-with-condition", r(T_KMS, b.kms_key(
            policy=b.wildcard_policy(condition=True)))),
        bad("wildcard", r(T_KMS, b.kms_key(policy=b.wildcard_policy()))),
        bad("gcp-all-users", r(T_GIAM, {"cryptoKeyId": "k", "role": "r",
                                                                            "member": "allUsers"})),
    ]


RULE = resource_rule(
    "kms-policy-no-wildcard-principal", kms_policy_no_wildcard_principal,
    category="keys",
    level=M,
    description="No key policy or key IAM grants to everyone.",
    remediation="Name principals explicitly, or add a Condition to statements with Principal '*'.",
    fixtures=fixtures,
)
