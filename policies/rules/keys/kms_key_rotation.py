"""kms-key-rotation: Keys rotate: AWS rotation on, GCP at least every maxDays (90), an Azure rotation policy."""

from __future__ import annotations

from pydantic import Field

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import duration_seconds, flag, get, maps
from policies.rule import Fixture, M, RuleOptions, options_of, resource_rule
from policies.rules.keys import AWS_KEY, DAY, GCP_KEY


class Options(RuleOptions):
    """Properties of ``kms-key-rotation`` in the policy config."""

    max_days: int = Field(default=90, ge=1, le=365, description="a whole number of days from 1 to 365")


AZURE_KEY = "azure-native:keyvault:Key"


def kms_key_rotation(r: Resource, s: Settings) -> Outcome:
    if r.type == AWS_KEY:
        # AWS rotates yearly by default; the issue asks for rotation on, so the period is not judged here.
        if flag(r.props.get("enableKeyRotation")) is not True:
            return fail("enableKeyRotation must be true")
        return COMPLIANT
    if r.type == GCP_KEY:
        seconds = duration_seconds(r.props.get("rotationPeriod"))
        days = options_of(s, "kms-key-rotation", Options).max_days
        limit = days * DAY
        if seconds is None or seconds > limit:
            return fail(f"rotationPeriod must be at most {limit}s ({days} days), but "
                        f"{r.props.get('rotationPeriod')!r} was given")
        return COMPLIANT
    if r.type == AZURE_KEY:
        actions = maps(get(r.props, "properties.rotationPolicy.lifetimeActions"))
        rotates = any(str(get(a, "action.type")).lower() == "rotate" for a in actions)
        if not rotates:
            return fail("properties.rotationPolicy.lifetimeActions must include a 'rotate' action")
        return COMPLIANT
    return NOT_APPLICABLE


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKEY, T_KMS, T_KVK, bad, ok

    r = b.res
    return [
        ok("aws", r(T_KMS, b.kms_key())),
        ok("gcp-90d", r(T_GKEY, b.gcp_key())),
        ok("azure-policy", r(T_KVK, b.vault_key())),
        bad("aws-off", r(T_KMS, b.kms_key(enableKeyRotation=False))),
        bad("gcp-1y", r(T_GKEY, b.gcp_key(rotationPeriod="31536000s"))),
        bad("azure-none", r(T_KVK, b.vault_key(properties={"rotationPolicy": None}))),
    ]


RULE = resource_rule(
    "kms-key-rotation", kms_key_rotation,
    category="keys",
    level=M,
    description="Keys rotate: AWS rotation on, GCP at least every maxDays (90), an Azure rotation policy.",
    remediation="Set enableKeyRotation, rotationPeriod '7776000s', or a Key Vault rotationPolicy with a rotate action.",
    options=Options,
    fixtures=fixtures,
)
