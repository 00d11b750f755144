"""The ``gantry:dr`` section: loaded with the stack, one-line errors naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, load_stack, parse

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def aws(**dr: object) -> dict[str, object]:
    section: dict[str, object] = {
        "primary": "prod", "standby": "prod-dr", "warmSize": 2,
        "healthChecks": [{"name": "web", "primaryUrl": "https://a.example.com/healthz",
                          "standbyUrl": "https://b.example.com/healthz"}],
    }
    section.update(dr)
    return {"cloud": "aws", "region": "us-east-1", "environment": "prod", "tier": "prod",
            "cluster": {"name": "gantry-c", "version": "1.33", "nodePools": [{"name": "system", "role": "system"}]},
            "dr": section}


def problems(values: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(values, source="stacks/Pulumi.prod.yaml")
    return info.value.problems


def test_shipped_pair_names_each_other_and_the_standby_is_pilot_light() -> None:
    prod, dr = load_stack("prod", STACKS), load_stack("prod-dr", STACKS)
    assert prod.dr is not None and dr.dr is not None
    assert (prod.dr.primary, prod.dr.standby) == (dr.dr.primary, dr.dr.standby) == ("prod", "prod-dr")
    assert (prod.region, dr.region) == ("us-east-1", "us-west-2")
    assert prod.dr.rto_seconds == 300.0  # the seed's RTO
    assert all(svc.replicas == dr.dr.warm_size for svc in dr.services.values())
    assert all(svc.replicas >= prod.dr.active_size for svc in prod.services.values())
    assert {r.hostname for r in prod.dr.records} == {"web.prod.gantry.example.com", "api.prod.gantry.example.com"}
    assert dr.dr.records == []  # only the traffic stack renders the switch
    local = load_stack("local", STACKS)
    assert local.dr is not None and local.dr.rto_seconds == 30.0


def test_rto_defaults_to_the_seeds_five_minutes() -> None:
    cfg = parse(aws(), source="x")
    assert cfg.dr is not None and (cfg.dr.rto.text, cfg.dr.rto) == ("5m", 300.0) and cfg.dr.active == "primary"


@pytest.mark.parametrize(("dr", "expected"), [
    ({"standby": "prod"}, "gantry:dr.standby must be a stack other than the primary (prod), but 'prod' was given"),
    ({"warmSize": 3, "activeSize": 3}, "gantry:dr.warmSize must be < activeSize (3): the standby scales up on "
                                       "failover, but 3 was given"),
    ({"rto": "soon"}, "gantry:dr.rto must be a number with a unit ms, s, m or h (e.g. 30s), but 'soon' was given"),
    ({"rto": "20s"}, "gantry:dr.healthChecks[0].failureThreshold must be such that interval x failureThreshold "
                     "stays under the RTO (20s), but 3 was given"),
    ({"healthChecks": []}, "gantry:dr.healthChecks must be a list of at least 1 item(s), but [] was given"),
    ({"healthChecks": [{"name": "web"}]}, "gantry:dr.healthChecks[0].primaryUrl must be set for a cloud stack, "
                                          "but None was given"),
    ({"replicationLag": {"url": "sandbox", "query": "up", "max": 1}},
     "gantry:dr.replicationLag.url must be an http(s) URL for a cloud stack, but 'sandbox' was given"),
    ({"replicationLag": {"url": "ftp://x", "query": "up", "max": 1}},
     "gantry:dr.replicationLag.url must be an http(s) URL or 'sandbox', but 'ftp://x' was given"),
    ({"replicationLag": {"url": "http://p:9090", "query": "up", "max": -1}},
     "gantry:dr.replicationLag.max must be >= 0.0, but -1 was given"),
    ({"activ": "standby"}, "gantry:dr.activ is not a known key; did you mean active?"),
    ({"active": "both"}, "gantry:dr.active must be one of 'primary' or 'standby', but 'both' was given"),
])
def test_bad_dr_config_is_one_line_naming_the_key(dr: dict[str, object], expected: str) -> None:
    assert expected in problems(aws(**dr))


def test_a_prod_standby_keeps_prods_replica_floor() -> None:
    values = aws(warmSize=1)
    assert "gantry:dr.warmSize must be >= 2 in prod (the standby's services run at least 2 replicas), but 1 was " \
           "given" in problems(values)


def test_duplicate_check_names_and_bad_urls_are_refused() -> None:
    check = {"name": "web", "primaryUrl": "https://a.example.com/", "standbyUrl": "https://b.example.com/"}
    assert any("named uniquely" in p for p in problems(aws(healthChecks=[check, check])))
    bad = {**check, "standbyUrl": "javascript:alert(1)"}
    assert any("standbyUrl must be an http:// or https:// URL" in p for p in problems(aws(healthChecks=[bad])))


def test_a_local_stack_checks_services_and_has_no_dns_records() -> None:
    values = {"cloud": "local", "environment": "local", "tier": "dev",
              "services": {"web": {"namespace": "web", "image": "demo:v1"}},
              "dr": {"primary": "local", "standby": "local-dr", "healthChecks": [{"name": "wbe"}]}}
    assert any("gantry:dr.healthChecks[0].name must be one of the stack's services (web)" in p
               for p in problems(values))
