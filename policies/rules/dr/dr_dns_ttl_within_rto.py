"""dr-dns-ttl-within-rto: failover DNS answers have a TTL short enough for the recovery time objective.

A resolver may keep serving the dead region for a whole TTL after the health checks have switched, so the TTL
is part of the RTO. The seed's RTO is 5 minutes (300 s), which also has to cover detecting the failure,
scaling the standby up, waiting for it to be healthy and verifying it; the default cap gives DNS caching at
most a fifth of it: ``maxTtlSeconds`` = 300 s / 5 = 60 s. Gantry's failover components default to 30 s.
"""

from __future__ import annotations

from pydantic import Field

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import get, integer, maps
from policies.rule import Fixture, M, RuleOptions, options_of, resource_rule
from policies.rules.dr import cloud_dns_primary_backup, is_priority_profile, r53_failover_role

RULE_ID = "dr-dns-ttl-within-rto"
SEED_RTO_SECONDS = 300
DNS_SHARE_OF_RTO = 5


class Options(RuleOptions):
    """Properties of ``dr-dns-ttl-within-rto`` in the policy config."""

    max_ttl_seconds: int = Field(
        default=SEED_RTO_SECONDS // DNS_SHARE_OF_RTO, ge=1, le=3600,
        description="a whole number of seconds from 1 to 3600 (default 60: a fifth of the seed's 5-minute RTO)")


def _ttl(r: Resource) -> tuple[str, object] | None:
    """The failover answer's TTL field and value, or None when ``r`` is not a failover answer."""
    if r53_failover_role(r) is not None:
        return "ttl", r.props.get("ttl")
    if cloud_dns_primary_backup(r) is not None:
        return "ttl", r.props.get("ttl")
    if is_priority_profile(r):
        return "dnsConfig.ttl", get(r.props, "dnsConfig.ttl")
    return None


def dr_dns_ttl_within_rto(r: Resource, s: Settings) -> Outcome:
    if r53_failover_role(r) is not None and maps(r.props.get("aliases")):
        return NOT_APPLICABLE  # an alias answer carries its target's TTL (an ELB's is 60 s), not one of its own
    found = _ttl(r)
    if found is None:
        return NOT_APPLICABLE
    field, raw = found
    limit = options_of(s, RULE_ID, Options).max_ttl_seconds
    ttl = integer(raw)
    if ttl is None:
        return fail(f"{field} must be set to at most {limit}s on a failover answer, but {raw!r} was given")
    if ttl > limit:
        return fail(f"{field} must be at most {limit}s (maxTtlSeconds) so resolvers follow a failover within the "
                    f"RTO, but {ttl} was given")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import bad, ok
    from policies.model import TierName
    from policies.rules.dr import DNS_RECORDSET, R53_RECORD

    record = {"zoneId": "Z0123456789ABC", "name": "web.example.com", "type": "CNAME", "ttl": 30,
              "records": ["web-use1.elb.amazonaws.com"], "setIdentifier": "primary",
              "failoverRoutingPolicies": [{"type": "PRIMARY"}], "healthCheckId": "hc-primary"}
    dns = {"managedZone": "prod", "name": "web.example.com.", "type": "A", "ttl": 60, "routingPolicy": {
        "healthCheck": "hc", "primaryBackup": {"primary": {"externalEndpoints": ["203.0.113.10"]}}}}
    profile = {"trafficRoutingMethod": "Priority", "dnsConfig": {"relativeName": "web", "ttl": 30},
               "monitorConfig": {"protocol": "HTTPS", "port": 443}}
    tm = "azure-native:trafficmanager:Profile"
    strict = b.settings(TierName.PROD, options={RULE_ID: Options(max_ttl_seconds=20)})
    return [
        ok("route53-30s", b.res(R53_RECORD, record)),
        bad("route53-300s", b.res(R53_RECORD, b.merge(record, {"ttl": 300}))),
        bad("route53-no-ttl", b.res(R53_RECORD, b.merge(record, {"ttl": None}))),
        ok("cloud-dns-60s-at-the-cap", b.res(DNS_RECORDSET, dns)),
        bad("cloud-dns-61s", b.res(DNS_RECORDSET, b.merge(dns, {"ttl": 61}))),
        ok("traffic-manager-30s", b.res(tm, profile)),
        bad("traffic-manager-3600s", b.res(tm, b.merge(profile, {"dnsConfig": {"ttl": 3600}}))),
        bad("configured-cap-20s", b.res(R53_RECORD, record), settings=strict),
    ]


RULE = resource_rule(
    RULE_ID, dr_dns_ttl_within_rto,
    category="dr",
    level=M,
    description="Failover DNS answers have a TTL of at most maxTtlSeconds (60 s: a fifth of the seed's 5-minute "
                "RTO).",
    remediation="Lower the record's ttl (Route 53, Cloud DNS) or the profile's dnsConfig.ttl (Traffic Manager); "
                "Gantry: FailoverSpec.ttl, 30 s by default.",
    options=Options,
    fixtures=fixtures,
)
