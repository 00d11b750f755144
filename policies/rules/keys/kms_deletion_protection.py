"""kms-deletion-protection: Keys cannot be destroyed quickly: long deletion windows, Key Vault purge protection."""

from __future__ import annotations

from pydantic import Field

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import duration_seconds, flag, integer, mapping
from policies.rule import Fixture, M, RuleOptions, options_of, resource_rule
from policies.rules.keys import AWS_KEY, AZURE_VAULT, DAY, GCP_KEY


class Options(RuleOptions):
    """Properties of ``kms-deletion-protection`` in the policy config."""

    min_days: int = Field(default=30, ge=7, le=30, description="a whole number of days from 7 to 30")


def kms_deletion_protection(r: Resource, s: Settings) -> Outcome:
    min_days = options_of(s, "kms-deletion-protection", Options).min_days
    if r.type == AWS_KEY:
        days = integer(r.props.get("deletionWindowInDays"))
        if days is not None and days < min_days:
            return fail(f"deletionWindowInDays must be >= {min_days}, but {days} was given")
        return COMPLIANT  # AWS defaults to the maximum window, 30 days
    if r.type == GCP_KEY:
        seconds = duration_seconds(r.props.get("destroyScheduledDuration"))
        if seconds is not None and seconds < min_days * DAY:
            return fail(f"destroyScheduledDuration must be >= {min_days * DAY}s, but "
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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_KMS, T_KV, bad, ok

    r = b.res
    return [
        ok("aws-30d", r(T_KMS, b.kms_key())),
        ok("vault-purge-protection", r(T_KV, b.key_vault())),
        bad("aws-7d", r(T_KMS, b.kms_key(deletionWindowInDays=7))),
        bad("vault-no-purge-protection", r(T_KV, b.key_vault(
            properties={"enablePurgeProtection": None}))),
    ]


RULE = resource_rule(
    "kms-deletion-protection", kms_deletion_protection,
    category="keys",
    level=M,
    description="Keys cannot be destroyed quickly: long deletion windows, Key Vault purge protection.",
    remediation="Keep deletionWindowInDays/destroyScheduledDuration at 30 days; set enablePurgeProtection.",
    options=Options,
    fixtures=fixtures,
)
