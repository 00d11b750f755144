"""The DR engine on a fake clock and scripted regions: the seed's steps, refusals, failures, locks and resume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dr_helpers import Regions, make_engine, make_settings

from infra.dr.engine import STEPS, DrEngine, Operation, journal_stack
from infra.dr.settings import Role
from infra.errors import ExitCode
from infra.rollout.clock import FakeClock
from infra.rollout.errors import MetricsUnavailable, StackLocked
from infra.rollout.journal import EntryKind, SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.seams import Phase, RolloutId, StackName


def applied_steps(engine: DrEngine, rid: str) -> list[str]:
    return [str(e.data["step"]) for e in engine.journal.entries(RolloutId(rid)) if e.kind is EntryKind.APPLIED]


def test_failover_follows_the_seed_steps_in_order_and_records_the_rto(tmp_path: Path) -> None:
    regions = Regions()
    clock = FakeClock()
    engine = make_engine(tmp_path, regions, clock=clock)
    fault_at = clock.now() - 12.0
    outcome = engine.failover(fault_at=fault_at)
    assert outcome.result == "done" and outcome.exit_code is ExitCode.OK
    assert regions.effects == ["scale 3", "switch standby"]
    assert applied_steps(engine, outcome.id) == list(STEPS[Operation.FAILOVER])
    # The RTO runs from the injected fault to the standby's verification, on the engine's clock.
    assert outcome.rto_seconds == pytest.approx(outcome.times["verify"] - fault_at)
    assert outcome.rto_seconds is not None and outcome.rto_seconds > 12.0
    assert outcome.replication == {"status": "pass", "passed": True, "lag": 2.0, "max": 30.0, "query": "max(lag)"}
    assert engine.journal.get(outcome.id).phase is Phase.PROMOTED
    # Every effect was announced in the journal before it happened.
    kinds = [(e.kind, e.data.get("step")) for e in engine.journal.entries(outcome.id)]
    for step in ("scale", "switch"):
        assert kinds.index((EntryKind.INTENT, step)) < kinds.index((EntryKind.APPLIED, step))


def test_the_primary_is_confirmed_down_only_after_the_failure_threshold(tmp_path: Path) -> None:
    regions = Regions()
    settings = make_settings(healthChecks=[{"name": "web", "primaryUrl": "https://a.example.com/",
                                            "standbyUrl": "https://b.example.com/", "failureThreshold": 4,
                                            "interval": "10s"}])
    clock = FakeClock()
    engine = make_engine(tmp_path, regions, settings, clock=clock)
    start = clock.now()
    outcome = engine.failover()
    assert regions.probes[:4] == ["primary"] * 4 and regions.probes[4] == "standby"
    assert outcome.times["confirm"] - start == pytest.approx(30.0)  # three intervals between four probes


def test_a_healthy_primary_is_refused_without_any_effect(tmp_path: Path) -> None:
    regions = Regions(up={"primary": True, "standby": True})
    engine = make_engine(tmp_path, regions)
    outcome = engine.failover()
    assert outcome.result == "refused" and outcome.exit_code is ExitCode.FAILED
    assert "--force" in outcome.message
    assert regions.effects == [] and regions.live == "primary"
    assert engine.journal.get(outcome.id).phase is Phase.ROLLED_BACK
    assert engine.unfinished() is None


def test_force_fails_over_a_healthy_primary(tmp_path: Path) -> None:
    regions = Regions(up={"primary": True, "standby": True})
    outcome = make_engine(tmp_path, regions).failover(force=True)
    assert outcome.result == "done" and regions.live == "standby"


def test_a_standby_that_never_gets_healthy_stops_before_the_switch(tmp_path: Path) -> None:
    regions = Regions(up={"primary": False, "standby": False})
    engine = make_engine(tmp_path, regions, make_settings(rto="2m"))
    outcome = engine.failover()
    assert outcome.result == "failed" and outcome.exit_code is ExitCode.OPERATOR
    assert "within the RTO" in outcome.message and "not switched" in outcome.message
    assert regions.effects == ["scale 3"] and regions.live == "primary"
    assert engine.journal.get(outcome.id).phase is Phase.FAILED


def test_a_standby_still_starting_is_waited_for(tmp_path: Path) -> None:
    regions = Regions(standby_healthy_after=3)
    outcome = make_engine(tmp_path, regions).failover()
    assert outcome.result == "done"
    assert regions.probes.count("standby") >= 4 + 3  # 3 failed waits, 1 pass, then 3 verification probes


class FlakyAfterSwitch(Regions):
    def switch(self, role: Role) -> None:
        super().switch(role)
        self.up["standby"] = False  # the new region falls over under the traffic


def test_a_failed_verification_after_the_switch_needs_an_operator(tmp_path: Path) -> None:
    regions = FlakyAfterSwitch()
    outcome = make_engine(tmp_path, regions).failover()
    assert outcome.result == "failed" and outcome.exit_code is ExitCode.OPERATOR
    assert "verification" in outcome.message and regions.live == "standby"


class LyingSwitch(Regions):
    def switch(self, role: Role) -> None:
        self.effects.append(f"switch {role}")  # says yes, changes nothing


def test_a_switch_the_live_system_does_not_show_fails(tmp_path: Path) -> None:
    outcome = make_engine(tmp_path, LyingSwitch()).failover()
    assert outcome.result == "failed" and "live switch says primary" in outcome.message


@pytest.mark.parametrize(("lag", "error", "status", "passed"), [
    (31.0, None, "fail", False),
    (None, None, "no data", False),
    (0.0, MetricsUnavailable("prometheus at http://127.0.0.1:9 is unreachable"), "unavailable", False),
])
def test_the_replication_lag_check_is_reported_not_hidden(tmp_path: Path, lag: float | None,
                                                          error: Exception | None, status: str,
                                                          passed: bool) -> None:
    regions = Regions(lag=lag, lag_error=error)
    outcome = make_engine(tmp_path, regions).failover()
    assert outcome.result == "done"  # traffic is on the standby either way: the check is reported
    assert outcome.replication is not None
    assert outcome.replication["status"] == status and outcome.replication["passed"] is passed


def test_no_replication_check_configured_is_reported_as_skipped(tmp_path: Path) -> None:
    outcome = make_engine(tmp_path, Regions(), make_settings(replicationLag=None)).failover()
    assert outcome.replication == {"status": "skipped", "passed": None}


def test_failback_waits_for_a_healthy_primary_then_reverses_the_failover(tmp_path: Path) -> None:
    regions = Regions()
    engine = make_engine(tmp_path, regions)
    assert engine.failover().result == "done"
    refused = engine.failback()
    assert refused.result == "refused" and regions.live == "standby" and regions.size == 3
    regions.up["primary"] = True
    back = engine.failback()
    assert back.result == "done"
    assert regions.effects[-2:] == ["switch primary", "scale 1"]
    assert regions.live == "primary" and regions.size == 1
    assert applied_steps(engine, back.id) == list(STEPS[Operation.FAILBACK])


def test_a_stack_leased_by_a_live_process_is_locked_and_untouched(tmp_path: Path) -> None:
    regions = Regions()
    clock = FakeClock()
    other = SqliteLock(tmp_path / "journal.db", clock, holder="rollout", pid=os.getppid())
    other.acquire(StackName("prod-dr"), RolloutId("r-live"))
    engine = make_engine(tmp_path, regions, clock=clock)
    with pytest.raises(StackLocked) as info:
        engine.failover()
    assert info.value.exit_code is ExitCode.LOCKED and info.value.stack == "prod-dr"
    assert regions.effects == [] and regions.probes == []
    # The lease on the other stack of the pair was given back.
    assert engine.lock.holder(StackName("prod")) is None
    assert engine.journal.history(journal_stack(make_settings())) == []


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing after it runs, no handler sees it."""


class DiesAtSwitch(Regions):
    def switch(self, role: Role) -> None:
        self.effects.append(f"switch {role} (killed)")
        raise Killed


def test_an_interrupted_failover_resumes_at_its_step_and_blocks_a_failback(tmp_path: Path) -> None:
    clock = FakeClock()
    dying = DiesAtSwitch()
    engine = make_engine(tmp_path, dying, clock=clock, pid=2**22 + 1)  # its lease names a pid that is gone
    with pytest.raises(Killed):
        engine.failover()
    engine.journal.close()
    regions = Regions(size=dying.size)
    again = make_engine(tmp_path, regions, clock=clock)
    pending = again.unfinished()
    assert pending is not None and pending.image == "failover"
    with pytest.raises(StackLocked, match="unfinished failover"):
        again.failback()
    outcome = again.failover()
    assert outcome.resumed and outcome.id == pending.id and outcome.result == "done"
    assert regions.effects == ["switch standby"]  # confirm, scale and wait are not repeated
    assert applied_steps(again, outcome.id) == list(STEPS[Operation.FAILOVER])


def test_the_journal_record_never_poses_as_a_rollout_of_a_real_stack(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, Regions())
    engine.failover()
    journal = SqliteJournal(tmp_path / "journal.db")
    try:
        assert journal.active(StackName("prod")) == [] and journal.history(StackName("prod")) == []
        assert [r.service for r in journal.history(StackName("dr:prod"))] == ["dr"]
    finally:
        journal.close()


class LeaseStolenDuringScale(Regions):
    """While the scale-up blocks past the lease's ttl, another process takes the standby's lease over."""

    def __init__(self, path: Path, clock: FakeClock) -> None:
        super().__init__()
        self.path, self.fake_clock = path, clock

    def scale(self, size: int) -> None:
        super().scale(size)
        self.fake_clock.advance(120.0)
        SqliteLock(self.path, self.fake_clock, holder="other", pid=os.getppid()).acquire(
            StackName("prod-dr"), RolloutId("r-other"))


def test_a_lease_lost_midway_stops_before_the_next_effect(tmp_path: Path) -> None:
    clock = FakeClock()
    regions = LeaseStolenDuringScale(tmp_path / "journal.db", clock)
    engine = make_engine(tmp_path, regions, clock=clock)
    with pytest.raises(StackLocked, match="other"):
        engine.failover()
    assert regions.effects == ["scale 3"]  # never switched traffic under someone else's lease
    pending = engine.unfinished()
    assert pending is not None  # left for `gantry dr failover` to resume once the stack is free


def test_credentials_in_the_lag_query_url_never_reach_the_journal(tmp_path: Path) -> None:
    url = "https://dr-bot:s3cr3t-token@prometheus.example.com"
    regions = Regions(lag_error=MetricsUnavailable(f"prometheus at {url} is unreachable: timed out"))
    settings = make_settings(replicationLag={"url": url, "query": "max(lag)", "max": 30})
    engine = make_engine(tmp_path, regions, settings)
    outcome = engine.failover()
    assert outcome.replication is not None and outcome.replication["status"] == "unavailable"
    assert "://***@prometheus.example.com" in str(outcome.replication["error"])
    text = str([e.as_json() for e in engine.journal.entries(outcome.id)])
    assert "s3cr3t-token" not in text and "s3cr3t-token" not in str(outcome.as_json())
