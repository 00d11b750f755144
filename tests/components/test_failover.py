"""DNS failover components under mocks: Route 53 failover, Cloud DNS primary/backup, Traffic Manager priority."""

from __future__ import annotations

from typing import Any

import pytest
from clusters_helpers import PROVIDER_CONFIG

from components.failover import FailoverSpec, build_failover
from components.spec import Cloud
from infra.render import RenderResult, render_callable


def spec(**overrides: Any) -> FailoverSpec:
    base: dict[str, Any] = {"hostname": "web.prod.gantry.example.com", "zone": "Z0123456789ABC",
                            "primary": "web-use1.elb.amazonaws.com", "standby": "web-usw2.elb.amazonaws.com"}
    base.update(overrides)
    return FailoverSpec.model_validate(base)


def render(cloud: Cloud, s: FailoverSpec) -> RenderResult:
    def program() -> None:
        rg = "rg-dr" if cloud is Cloud.AZURE else None
        build_failover("web-dr", s, cloud=cloud, tags={"owner": "platform"}, resource_group_name=rg,
                       project="acme-prod-4711" if cloud is Cloud.GCP else None)

    return render_callable(program, project="gantry", stack="dr", config=PROVIDER_CONFIG[cloud])


def test_route53_primary_and_secondary_records_each_have_a_health_check() -> None:
    result = render(Cloud.AWS, spec())
    checks = {r.name: r for r in result.of_type("aws:route53/healthCheck:HealthCheck")}
    records = {r.name: r for r in result.of_type("aws:route53/record:Record")}
    assert set(records) == {"web-dr-primary", "web-dr-secondary"}
    for role, target in (("primary", "web-use1.elb.amazonaws.com"), ("secondary", "web-usw2.elb.amazonaws.com")):
        record, check = records[f"web-dr-{role}"], checks[f"web-dr-{role}-check"]
        assert record.inputs["failoverRoutingPolicies"] == [{"type": role.upper()}]
        assert record.inputs["healthCheckId"] == check.outputs["id"]
        assert record.inputs["records"] == [target] and record.inputs["type"] == "CNAME"
        assert record.inputs["ttl"] == 30
        assert check.inputs["fqdn"] == target and check.inputs["type"] == "HTTPS"
        assert check.inputs["enableSni"] is True
        assert (check.inputs["requestInterval"], check.inputs["failureThreshold"]) == (10, 3)
        assert check.inputs["resourcePath"] == "/healthz"


def test_cloud_dns_primary_backup_is_health_checked() -> None:
    result = render(Cloud.GCP, spec(primary="203.0.113.10", standby="198.51.100.20", zone="prod-zone",
                                    standby_location="us-west1"))
    record = result.one("gcp:dns/recordSet:RecordSet")
    check = result.one("gcp:compute/healthCheck:HealthCheck")
    policy = record.inputs["routingPolicy"]
    assert policy["healthCheck"] == check.outputs["id"]
    assert policy["primaryBackup"]["primary"]["externalEndpoints"] == ["203.0.113.10"]
    backup = policy["primaryBackup"]["backupGeos"][0]
    assert backup["location"] == "us-west1"
    assert backup["healthCheckedTargets"]["externalEndpoints"] == ["198.51.100.20"]
    assert record.inputs["name"] == "web.prod.gantry.example.com." and record.inputs["type"] == "A"
    assert len(check.inputs["sourceRegions"]) == 3
    assert check.inputs["httpsHealthCheck"]["requestPath"] == "/healthz"


def test_cloud_dns_needs_ip_endpoints_and_a_standby_location() -> None:
    with pytest.raises(Exception, match="primary must be an IPv4 address"):
        render(Cloud.GCP, spec(standby_location="us-west1"))


def test_traffic_manager_priority_routing_probes_both_endpoints() -> None:
    result = render(Cloud.AZURE, spec(zone="gantry-web-prod"))
    profile = result.one("azure-native:trafficmanager:Profile")
    assert profile.inputs["trafficRoutingMethod"] == "Priority"
    assert profile.inputs["dnsConfig"] == {"relativeName": "gantry-web-prod", "ttl": 30}
    monitor = profile.inputs["monitorConfig"]
    assert (monitor["protocol"], monitor["path"], monitor["intervalInSeconds"]) == ("HTTPS", "/healthz", 10)
    assert monitor["toleratedNumberOfFailures"] == 3 and monitor["timeoutInSeconds"] < 10
    endpoints = sorted(profile.inputs["endpoints"], key=lambda e: e["priority"])
    assert [(e["target"], e["priority"]) for e in endpoints] == [("web-use1.elb.amazonaws.com", 1),
                                                                 ("web-usw2.elb.amazonaws.com", 2)]


def test_ttl_plus_detection_must_fit_the_rto() -> None:
    with pytest.raises(ValueError, match=r"ttl must be at most 30 so that TTL plus detection \(30s\) stays within "
                                        r"the RTO \(60s\), but 45 was given"):
        spec(ttl=45, rto_seconds=60)
    assert spec(ttl=30, rto_seconds=60).ttl == 30


@pytest.mark.parametrize(("field", "value"), [("hostname", "Web..example"), ("primary", "not a host!"),
                                              ("standby", "web-use1.elb.amazonaws.com")])
def test_bad_endpoints_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        spec(**{field: value})


def test_local_has_no_dns_failover() -> None:
    with pytest.raises(ValueError, match="sandbox switches regions in HAProxy"):
        build_failover("x", spec(), cloud=Cloud.LOCAL, tags={})
