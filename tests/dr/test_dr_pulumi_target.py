"""PulumiDrTarget on the Automation API fake: config writes and ``up`` per stack, locks, and what the switch renders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from clusters_helpers import PROVIDER_CONFIG
from dr_helpers import make_settings
from fake_automation import FakeStack, FakeWorkspace, services_program

from components.spec import Cloud
from infra.config import load_stack
from infra.dr.engine import DrEngine
from infra.dr.pulumi_target import PulumiDrTarget
from infra.dr.traffic import build_traffic_switch, effective_record
from infra.errors import ExitCode
from infra.render import render_callable
from infra.rollout.clock import FakeClock
from infra.rollout.errors import StackLocked
from infra.rollout.journal import SqliteJournal
from infra.rollout.lock import SqliteLock

STACKS = Path(__file__).resolve().parents[2] / "stacks"
SERVICES = {"web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0", "replicas": 1},
            "api": {"namespace": "api", "image": "ghcr.io/acme/api:2.0", "replicas": 1}}


def workspace() -> FakeWorkspace:
    ws = FakeWorkspace()
    ws.add(FakeStack("prod", config={"gantry:services": {k: {**v, "replicas": 3} for k, v in SERVICES.items()},
                                     "gantry:dr": {"primary": "prod", "standby": "prod-dr"}},
                     program=services_program))
    ws.add(FakeStack("prod-dr", config={"gantry:services": {k: dict(v) for k, v in SERVICES.items()}},
                     program=services_program))
    return ws


def probe_usw2_only(url: str, timeout: float) -> tuple[bool, str]:
    return "usw2" in url, "HTTP 200" if "usw2" in url else "ConnectTimeout"


def target(ws: FakeWorkspace, tmp_path: Path, on_output: Callable[[str], None] | None = None) -> PulumiDrTarget:
    return PulumiDrTarget(make_settings(), tmp_path, stack_factory=ws.factory, prober=probe_usw2_only,
                          on_output=on_output)


def replicas(config: Mapping[str, object]) -> set[object]:
    services = config["gantry:services"]
    assert isinstance(services, dict)
    return {svc["replicas"] for svc in services.values()}


def active(config: Mapping[str, object]) -> object:
    section = config["gantry:dr"]
    assert isinstance(section, dict)
    return section["active"]


def test_scale_writes_each_standby_service_replicas_then_runs_up(tmp_path: Path) -> None:
    ws = workspace()
    lines: list[str] = []
    target(ws, tmp_path, on_output=lines.append).scale(3)
    standby = ws.stacks["prod-dr"]
    assert sorted(w[0] for w in standby.writes) == ["gantry:services.api.replicas", "gantry:services.web.replicas"]
    assert all(w[2] for w in standby.writes)  # --path writes
    assert standby.calls[-1] == "up"
    assert replicas(standby.ups[-1]) == {3}
    assert ws.stacks["prod"].ups == []  # the primary (maybe down) is never touched by the scale-up
    assert any("scale the standby to 3" in line for line in lines)


def test_switch_writes_the_traffic_stacks_active_region_and_reads_it_back(tmp_path: Path) -> None:
    ws = workspace()
    t = target(ws, tmp_path)
    assert t.active() == "primary"
    t.switch("standby")
    prod = ws.stacks["prod"]
    assert prod.writes == [("gantry:dr.active", "standby", True)] and prod.calls[-1] == "up"
    assert prod.ups[-1]["gantry:dr"] == {"primary": "prod", "standby": "prod-dr", "active": "standby"}
    assert t.active() == "standby"


def test_probes_use_each_regions_url_with_the_checks_timeout(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []

    def prober(url: str, timeout: float) -> tuple[bool, str]:
        seen.append((url, timeout))
        return True, "HTTP 200"

    t = PulumiDrTarget(make_settings(), tmp_path, stack_factory=workspace().factory, prober=prober)
    assert t.probe("primary").healthy and t.probe("standby").healthy
    assert seen == [("https://web-use1.example.com/healthz", 2.0), ("https://web-usw2.example.com/healthz", 2.0)]


def test_a_standby_locked_by_another_update_is_exit_3(tmp_path: Path) -> None:
    ws = workspace()
    ws.stacks["prod-dr"].lock_by("deploy", "ci-runner-7", 4242)
    with pytest.raises(StackLocked) as info:
        target(ws, tmp_path).scale(3)
    assert info.value.exit_code is ExitCode.LOCKED and "ci-runner-7" in str(info.value)


def test_failover_and_failback_through_the_automation_api(tmp_path: Path) -> None:
    ws = workspace()
    clock = FakeClock()
    journal = SqliteJournal(tmp_path / "journal.db")
    engine = DrEngine(make_settings(replicationLag=None), target(ws, tmp_path), journal,
                      SqliteLock(journal.path, clock), clock)
    assert engine.failover().result == "done"
    assert active(ws.stacks["prod"].config) == "standby"
    assert replicas(ws.stacks["prod-dr"].config) == {3}
    # Failback refuses while prod's checks fail, then reverses both writes once they pass.
    assert engine.failback().result == "refused"
    engine.target = PulumiDrTarget(make_settings(replicationLag=None), tmp_path, stack_factory=ws.factory,
                                   prober=lambda url, t: (True, "HTTP 200"))
    assert engine.failback().result == "done"
    assert active(ws.stacks["prod"].ups[-1]) == "primary"
    assert replicas(ws.stacks["prod-dr"].ups[-1]) == {1}
    journal.close()


def test_while_the_standby_is_active_the_records_swap_roles() -> None:
    cfg = load_stack("prod", STACKS)
    assert cfg.dr is not None
    spec = cfg.dr.records[0]
    assert effective_record(spec, active="primary", primary_region="us-east-1") == spec
    swapped = effective_record(spec, active="standby", primary_region="us-east-1")
    assert (swapped.primary, swapped.standby) == (spec.standby, spec.primary)


@pytest.mark.parametrize("active", ["primary", "standby"])
def test_the_prod_traffic_stack_renders_route53_failover_for_the_active_region(active: str) -> None:
    cfg = load_stack("prod", STACKS)
    assert cfg.dr is not None
    cfg = cfg.model_copy(update={"dr": cfg.dr.model_copy(update={"active": active})})

    def program() -> None:
        build_traffic_switch(cfg)

    result = render_callable(program, project="gantry", stack="prod", config=PROVIDER_CONFIG[Cloud.AWS])
    records = {r.name: r for r in result.of_type("aws:route53/record:Record")}
    primary = records["web-dr-primary"].inputs
    assert primary["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    want = "web-usw2.prod.gantry.example.com" if active == "standby" else "web-use1.prod.gantry.example.com"
    assert primary["records"] == [want]
    assert len(result.of_type("aws:route53/healthCheck:HealthCheck")) == 4  # every record is health-checked
