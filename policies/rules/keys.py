"""Encryption-key rules: rotation, deletion protection and key policies, on AWS KMS, Cloud KMS and Key Vault."""

from __future__ import annotations

import json
from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import duration_seconds, flag, get, integer, mapping, maps, strings, text

AWS_KEY = "aws:kms/key:Key"
AWS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
GCP_KEY = "gcp:kms/cryptoKey:CryptoKey"
GCP_KEY_IAM = frozenset({
    "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:kms/keyRingIAMBinding:KeyRingIAMBinding",
    "gcp:kms/keyRingIAMMember:KeyRingIAMMember",
})
AZURE_VAULT = "azure-native:keyvault:Vault"
AZURE_KEY = "azure-native:keyvault:Key"
DAY = 86400


def kms_key_rotation(r: Resource, s: Settings) -> Outcome:
    if r.type == AWS_KEY:
        # AWS rotates yearly by default; the issue asks for rotation on, so the period is not judged here.
        if flag(r.props.get("enableKeyRotation")) is not True:
            return fail("enableKeyRotation must be true")
        return COMPLIANT
    if r.type == GCP_KEY:
        seconds = duration_seconds(r.props.get("rotationPeriod"))
        limit = s.max_key_rotation_days * DAY
        if seconds is None or seconds > limit:
            return fail(f"rotationPeriod must be at most {limit}s ({s.max_key_rotation_days} days), but "
                        f"{r.props.get('rotationPeriod')!r} was given")
        return COMPLIANT
    if r.type == AZURE_KEY:
        actions = maps(get(r.props, "properties.rotationPolicy.lifetimeActions"))
        rotates = any(str(get(a, "action.type")).lower() == "rotate" for a in actions)
        if not rotates:
            return fail("properties.rotationPolicy.lifetimeActions must include a 'rotate' action")
        return COMPLIANT
    return NOT_APPLICABLE


def kms_deletion_protection(r: Resource, s: Settings) -> Outcome:
    if r.type == AWS_KEY:
        days = integer(r.props.get("deletionWindowInDays"))
        if days is not None and days < s.min_key_deletion_days:
            return fail(f"deletionWindowInDays must be >= {s.min_key_deletion_days}, but {days} was given")
        return COMPLIANT  # AWS defaults to the maximum window, 30 days
    if r.type == GCP_KEY:
        seconds = duration_seconds(r.props.get("destroyScheduledDuration"))
        if seconds is not None and seconds < s.min_key_deletion_days * DAY:
            return fail(f"destroyScheduledDuration must be >= {s.min_key_deletion_days * DAY}s, but "
                        f"{r.props.get('destroyScheduledDuration')!r} was given")
        return COMPLIANT
    if r.type == AZURE_VAULT:
        props = mapping(r.props.get("properties"))
        out = []
        if flag(props.get("enableSoftDelete")) is False:
            out.append("properties.enableSoftDelete must not be false")
        if flag(props.get("enablePurgeProtection")) is not True:
            out.append("properties.enablePurgeProtection must be true")
        return fail_all(out)
    return NOT_APPLICABLE


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



