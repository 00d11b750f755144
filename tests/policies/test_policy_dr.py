"""The DR rules on what Gantry's failover components really render (under Pulumi mocks), on every cloud."""

from __future__ import annotations

from typing import Any

import pytest

from components.failover import FailoverSpec, build_failover
from components.spec import Cloud
from infra.render import render_callable
from policies.config import build_settings, load_policy_config, parse_policy_config
from policies.engine import FindingStatus, evaluate, resources_from_render
from policies.model import Resource, TierName
from policies.pack import BY_ID

DR_RULES = ("dr-failover-health-checked", "dr-dns-ttl-within-rto")
PROVIDER_CONFIG: dict[Cloud, dict[str, object]] = {
    Cloud.AWS: {"aws:region": "us-east-1"},
    Cloud.GCP: {"gcp:region": "europe-west1", "gcp:project": "acme-prod-4711"},
    Cloud.AZURE: {"azure-native:location": "westeurope"},
}
ENDPOINTS = {
    Cloud.AWS: {"primary": "web-use1.elb.amazonaws.com", "standby": "web-usw2.elb.amazonaws.com"},
    Cloud.GCP: {"primary": "203.0.113.10", "standby": "198.51.100.20", "standby_location": "us-west1"},
    Cloud.AZURE: {"primary": "web-use1.elb.example.com", "standby": "web-usw2.elb.example.com"},
}
# What each cloud's switch renders that the DR rules judge.
SUBJECTS = {Cloud.AWS: {"aws:route53/record:Record": 2}, Cloud.GCP: {"gcp:dns/recordSet:RecordSet": 1},
            Cloud.AZURE: {"azure-native:trafficmanager:Profile": 1}}


def rendered(cloud: Cloud, **overrides: Any) -> list[Resource]:
    spec = FailoverSpec.model_validate({"hostname": "web.prod.gantry.example.com", "zone": "gantry-web-prod",
                                        **ENDPOINTS[cloud], **overrides})

    def program() -> None:
        build_failover("web-dr", spec, cloud=cloud, tags={"owner": "platform", "env": "prod", "cost-center": "cc"},
                       resource_group_name="rg-dr" if cloud is Cloud.AZURE else None,
                       project="acme-prod-4711" if cloud is Cloud.GCP else None)

    result = render_callable(program, project="gantry", stack="prod-dr", config=PROVIDER_CONFIG[cloud])
    return resources_from_render(result)


def dr_findings(resources: list[Resource], doc: object = None) -> list[tuple[str, str, FindingStatus]]:
    config = parse_policy_config(doc, "test") if doc is not None else load_policy_config()
    settings = build_settings(config, TierName.PROD, prices={})
    findings = evaluate(resources, settings, config.levels(TierName.PROD), rules=[BY_ID[i] for i in DR_RULES])
    return [(f.policy, f.type, f.status) for f in findings]


@pytest.mark.parametrize("cloud", [Cloud.AWS, Cloud.GCP, Cloud.AZURE], ids=lambda c: c.value)
def test_the_failover_components_comply_by_default(cloud: Cloud) -> None:
    resources = rendered(cloud)
    # The rules really judge the component's answers (compliant, not merely not applicable).
    for type_, count in SUBJECTS[cloud].items():
        subjects = [r for r in resources if r.type == type_]
        assert len(subjects) == count
        for rule_id in DR_RULES:
            rule = BY_ID[rule_id]
            assert rule.resource is not None
            settings = build_settings(load_policy_config(), TierName.PROD, prices={})
            assert all(rule.resource(r, settings).state.value == "compliant" for r in subjects), rule_id
    assert dr_findings(resources) == []


@pytest.mark.parametrize("cloud", [Cloud.AWS, Cloud.GCP, Cloud.AZURE], ids=lambda c: c.value)
def test_a_ttl_the_spec_allows_but_the_rto_rule_refuses(cloud: Cloud) -> None:
    # The spec only bounds TTL + detection by the stack's own RTO; with a 10-minute RTO, 120 s passes the spec
    # but not the pack's cap (a fifth of the seed's 5-minute RTO).
    resources = rendered(cloud, ttl=120, rto_seconds=600)
    expected = [("dr-dns-ttl-within-rto", type_, FindingStatus.VIOLATION)
                for type_, count in SUBJECTS[cloud].items() for _ in range(count)]
    assert dr_findings(resources) == expected
    # The cap is a typed property of the rule's policy-config entry.
    assert dr_findings(resources, {"dr-dns-ttl-within-rto": {"maxTtlSeconds": 120}}) == []


def test_a_route53_failover_record_without_its_health_check_is_refused() -> None:
    from dataclasses import replace

    resources = rendered(Cloud.AWS)
    stripped = [replace(r, props={k: v for k, v in r.props.items() if k != "healthCheckId"})
                if r.type == "aws:route53/record:Record" and r.name.endswith("secondary") else r for r in resources]
    assert dr_findings(stripped) == [("dr-failover-health-checked", "aws:route53/record:Record",
                                      FindingStatus.VIOLATION)]
