"""dr-failover-health-checked: failover DNS answers are switched by health checks, never by hand alone."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import get, mapping, maps, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.dr import TM_ENDPOINTS, cloud_dns_primary_backup, is_priority_profile, r53_failover_role


def _targets_checked(targets: Mapping[str, object], checked: bool) -> bool:
    """Cloud DNS health-checks internal load balancers itself; external endpoints need the policy's check."""
    if maps(targets.get("internalLoadBalancers")):
        return True
    return bool(targets.get("externalEndpoints")) and checked


def dr_failover_health_checked(r: Resource, s: Settings) -> Outcome:
    role = r53_failover_role(r)
    if role is not None:
        if text(r.props.get("healthCheckId")):
            return COMPLIANT
        return fail(f"healthCheckId must name a Route 53 health check on this {role} failover record, but none "
                    "was given; without one Route 53 never fails over (or back)")
    block = cloud_dns_primary_backup(r)
    if block is not None:
        checked = bool(text(get(r.props, "routingPolicy.healthCheck")))
        out = []
        if not _targets_checked(mapping(block.get("primary")), checked):
            out.append("routingPolicy.primaryBackup.primary must list health-checked targets (externalEndpoints "
                       "with routingPolicy.healthCheck set, or internalLoadBalancers)")
        geos = maps(block.get("backupGeos"))
        if not geos:
            out.append("routingPolicy.primaryBackup.backupGeos must name the standby region")
        for i, geo in enumerate(geos):
            if not _targets_checked(mapping(geo.get("healthCheckedTargets")), checked):
                out.append(f"routingPolicy.primaryBackup.backupGeos[{i}].healthCheckedTargets must be set (plain "
                           "rrdatas are served without a health check)")
        return fail_all(out)
    if is_priority_profile(r):
        monitor = mapping(r.props.get("monitorConfig"))
        out = []
        if not text(monitor.get("protocol")) or monitor.get("port") is None:
            out.append("monitorConfig must set protocol and port so Traffic Manager probes each endpoint")
        for i, endpoint in enumerate(maps(r.props.get("endpoints"))):
            if str(endpoint.get("alwaysServe", "")).lower() == "enabled":
                out.append(f"endpoints[{i}].alwaysServe must not be Enabled: it turns off the endpoint's health "
                           "checks, so a dead region keeps receiving traffic")
        return fail_all(out)
    if r.type in TM_ENDPOINTS:
        if str(r.props.get("alwaysServe", "")).lower() == "enabled":
            return fail("alwaysServe must not be Enabled: it turns off the endpoint's health checks")
        return COMPLIANT
    return NOT_APPLICABLE


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import bad, ok
    from policies.rules.dr import DNS_RECORDSET, R53_RECORD

    record = {"zoneId": "Z0123456789ABC", "name": "web.example.com", "type": "CNAME", "ttl": 30,
              "records": ["web-use1.elb.amazonaws.com"], "setIdentifier": "primary",
              "failoverRoutingPolicies": [{"type": "PRIMARY"}], "healthCheckId": "hc-primary"}
    dns = {"managedZone": "prod", "name": "web.example.com.", "type": "A", "ttl": 30, "routingPolicy": {
        "healthCheck": "projects/p/global/healthChecks/web",
        "primaryBackup": {"primary": {"externalEndpoints": ["203.0.113.10"]}, "trickleRatio": 0,
                          "backupGeos": [{"location": "us-west1",
                                          "healthCheckedTargets": {"externalEndpoints": ["198.51.100.20"]}}]}}}
    profile = {"resourceGroupName": "rg", "trafficRoutingMethod": "Priority", "location": "global",
               "dnsConfig": {"relativeName": "web", "ttl": 30},
               "monitorConfig": {"protocol": "HTTPS", "port": 443, "path": "/healthz"},
               "endpoints": [{"name": "primary", "target": "a.example.com", "priority": 1},
                             {"name": "standby", "target": "b.example.com", "priority": 2}]}
    tm = "azure-native:trafficmanager:Profile"
    return [
        ok("route53-checked", b.res(R53_RECORD, record)),
        bad("route53-secondary-unchecked", b.res(R53_RECORD, b.merge(record, {
            "healthCheckId": None, "setIdentifier": "secondary", "failoverRoutingPolicies": [{"type": "SECONDARY"}]}))),
        ok("cloud-dns-checked", b.res(DNS_RECORDSET, dns)),
        bad("cloud-dns-no-health-check", b.res(DNS_RECORDSET, b.merge(dns, {"routingPolicy": {"healthCheck": None}}))),
        bad("cloud-dns-backup-rrdatas", b.res(DNS_RECORDSET, b.merge(dns, {"routingPolicy": {"primaryBackup": {
            "backupGeos": [{"location": "us-west1", "rrdatas": ["198.51.100.20"]}]}}}))),
        ok("traffic-manager-probed", b.res(tm, profile)),
        bad("traffic-manager-always-serve", b.res(tm, b.merge(profile, {"endpoints": [
            {"name": "primary", "target": "a.example.com", "priority": 1, "alwaysServe": "Enabled"}]}))),
        bad("traffic-manager-no-monitor", b.res(tm, b.merge(profile, {"monitorConfig": None}))),
    ]


RULE = resource_rule(
    "dr-failover-health-checked", dr_failover_health_checked,
    category="dr",
    level=M,
    description="DNS failover (Route 53 failover records, Cloud DNS primary/backup, Traffic Manager priority "
                "profiles) is driven by health checks on every region.",
    remediation="Give each Route 53 failover record a healthCheckId, the Cloud DNS routing policy a healthCheck "
                "and healthCheckedTargets, and the Traffic Manager profile a monitorConfig without alwaysServe "
                "(Gantry: components.failover.build_failover does all three).",
    fixtures=fixtures,
)
