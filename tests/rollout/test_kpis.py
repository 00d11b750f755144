"""Delivery KPIs on a synthetic journal written by the real engine (see kpi_scenario for its timeline).

Each metric is asserted to its exact value, derived in the comments from the plan and the target's costs:
a rollout with no commit time (r2), a rollback that failed (r4), a resumed rollout (r5), overlapping
rollouts on two services (r6 and r7) and a fast-track revert (r8).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kpi_scenario import DAY, STABLE_REQUESTS, T0, Scenario, build

from infra.rollout import kpis
from infra.rollout.journal import EntryKind
from infra.rollout.kpis import KpiReport, RolloutFacts, Scope, ScopeKind
from infra.rollout.seams import Phase, RolloutId

UNTIL = T0 + 14 * DAY
HEALTHY = 20 + 3 * (10 + 30) + 15  # prepare, three steps (set_weights + interval), promote: 155 s


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build(tmp_path_factory.mktemp("kpi"))


@pytest.fixture(scope="module")
def facts(scenario: Scenario) -> list[RolloutFacts]:
    return kpis.load(scenario.journal)


@pytest.fixture(scope="module")
def report(facts: list[RolloutFacts]) -> KpiReport:
    return kpis.compute(facts, since=T0 - 30 * DAY, until=UNTIL)


def scope(report: KpiReport, stack: str | None = None, service: str | None = None) -> Scope:
    return next(s for s in report.scopes if s.stack == stack and s.service == service)


def value(s: Scope, key: str) -> float | None:
    return s.metric(key).value


def test_the_scenario_ran_as_its_timeline_says(scenario: Scenario) -> None:
    phases = {k: o.phase for k, o in scenario.outcomes.items()}
    assert phases == {"r1": Phase.PROMOTED, "r2": Phase.PROMOTED, "r3": Phase.ROLLED_BACK, "r4": Phase.FAILED,
                      "r5": Phase.PROMOTED, "r6": Phase.PROMOTED, "r7": Phase.PROMOTED, "r8": Phase.ROLLED_BACK}
    s = scenario.starts
    # r7 started and ended inside r6.
    r6 = scenario.journal.get(scenario.ids["r6"])
    r7 = scenario.journal.get(scenario.ids["r7"])
    assert r6.created_at < r7.created_at < r7.updated_at < r6.updated_at
    assert s["r7"] - s["r6"] == 100  # r6's second analysis: 20 + 10 + 30 + 30 + 10 s
    # r5 was resumed: its journal has no analysis between the crash and the resume 600 s later.
    analyses = [e.at - s["r5"] for e in scenario.journal.entries(scenario.ids["r5"]) if e.kind is EntryKind.ANALYSIS]
    assert analyses == [60, 700, 740]
    r2 = scenario.journal.get(scenario.ids["r2"])
    assert r2.provenance.commit is not None and r2.provenance.committed_at is None


def test_overall_metrics_are_exact(report: KpiReport) -> None:
    o = report.overall
    assert (o.kind, o.rollouts, o.in_progress) == (ScopeKind.OVERALL, 8, 0)
    # Promoted changes r1 r2 r5 r6 r7 over the 14 days since the journal's first rollout (T0).
    assert value(o, "deployment_frequency") == 5 / 14
    assert o.metric("deployment_frequency").met is False  # the seed asks for one every 15 minutes
    # Lead times of the promoted rollouts with a commit time: r1 3600+155, r5 7200+755, r6 1200+310, r7 300+155.
    assert value(o, "lead_time") == (1200 + 310 + 3600 + 155) / 2
    assert o.metric("lead_time").detail["without_commit_time"] == 1  # r2
    assert o.metric("lead_time").met is True
    # r3: first failing analysis at +100, revert applied at +130 + 40. r4's revert failed: unrecovered.
    assert value(o, "mttr") == 70
    assert o.metric("mttr").detail == {"mean": 70, "median": 70, "max": 70, "incidents": 2, "unrecovered": 1}
    # Changes r1..r7; failed: r3 and r4 rolled back, r6 promoted then reverted by r8.
    assert value(o, "change_failure_rate") == 3 / 7
    assert value(o, "deployment_success_rate") == 5 / 7
    assert value(o, "rollback_rate") == 2 / 7
    # Rollbacks r3, r4 and the fast-track revert r8; r4's revert raised.
    assert value(o, "rollback_success_rate") == 2 / 3
    assert o.metric("rollback_success_rate").met is False
    # r3: decided at +130, applied 40 s later; r8: decided at its start, applied 25 s later.
    assert value(o, "rollback_time") == (40 + 25) / 2
    # r1 r2 r7 healthy; r5 waited 600 s to be resumed; r6 waited 155 s for r7 inside an analysis.
    assert value(o, "deployment_time") == (3 * HEALTHY + (HEALTHY + 600) + (HEALTHY + HEALTHY)) / 5
    assert o.metric("deployment_time").detail["max"] == HEALTHY + 600
    # 21 journaled analyses (3 per change; r5's crashed one left no entry), 1000 stable requests each;
    # r3's two failing analyses saw 3 stable errors each, r4's 2 each.
    assert o.metric("zero_downtime").detail == {"stable_requests": 21 * STABLE_REQUESTS, "stable_errors": 10}
    assert value(o, "zero_downtime") == 1 - 10 / 21_000
    assert o.metric("zero_downtime").met is True


def test_per_stack_and_service_metrics_are_exact(report: KpiReport) -> None:
    labels = [s.label for s in report.scopes]
    assert labels == ["overall", "prod", "prod/api", "prod/web", "staging", "staging/api", "staging/web"]
    web = scope(report, "prod", "web")  # r1 r2 r3 r6 and the revert r8
    assert (web.rollouts, value(web, "change_failure_rate"), value(web, "rollback_rate")) == (5, 2 / 4, 1 / 4)
    assert value(web, "rollback_success_rate") == 1.0 and web.metric("rollback_success_rate").met is True
    assert value(web, "lead_time") == (3755 + 1510) / 2
    api = scope(report, "prod", "api")  # only the resumed r5
    assert value(api, "deployment_time") == HEALTHY + 600
    assert api.metric("deployment_time").met is False
    assert value(api, "lead_time") == 7200 + HEALTHY + 600
    assert api.metric("lead_time").met is False
    assert value(api, "mttr") is None and api.metric("mttr").met is None  # no incident: no data, not "met"
    staging = scope(report, "staging", "web")  # r4: its rollback failed
    assert value(staging, "rollback_success_rate") == 0.0
    assert value(staging, "mttr") is None and staging.metric("mttr").detail["unrecovered"] == 1
    assert value(staging, "zero_downtime") == 1 - 4 / 3000
    assert value(staging, "deployment_frequency") == 0.0 and value(staging, "deployment_success_rate") == 0.0
    overlapped = scope(report, "staging", "api")  # r7, which ran inside r6
    assert (value(overlapped, "deployment_time"), value(overlapped, "lead_time")) == (HEALTHY, 300 + HEALTHY)
    assert value(scope(report, "staging"), "deployment_frequency") == 1 / 14
    prod = scope(report, "prod")
    assert value(prod, "change_failure_rate") == 2 / 5 and value(prod, "deployment_time") == (
        2 * HEALTHY + HEALTHY + 600 + 2 * HEALTHY) / 4


def test_weekly_trend_groups_by_iso_week(report: KpiReport) -> None:
    assert [w.label for w in report.weeks] == ["2023-W46", "2023-W47", "2023-W48"]
    w46, w47, w48 = report.weeks
    # W46 runs from the journal's first rollout (Tuesday 22:13:20) to Monday 00:00.
    monday = datetime(2023, 11, 20, tzinfo=UTC).timestamp()
    assert w46.metric("deployment_frequency").value == 2 / ((monday - T0) / DAY)
    assert w46.metric("rollback_rate").value == 2 / 4
    assert w47.metric("deployment_frequency").value == 3 / 7
    assert w47.metric("change_failure_rate").value == 1 / 3  # r6, reverted in the same week
    assert w48.metric("deployment_frequency").value == 0.0
    assert w48.metric("lead_time").value is None


def test_window_filters_rollouts_but_a_later_revert_still_counts(facts: list[RolloutFacts]) -> None:
    week2 = kpis.compute(facts, since=T0 + 5 * DAY, until=UNTIL)
    assert week2.overall.rollouts == 4  # r5 r6 r7 r8
    assert value(week2.overall, "deployment_frequency") == 3 / 9
    assert value(week2.overall, "change_failure_rate") == 1 / 3
    # r6 reverted by r8, which lies outside a window ending before it: r6 is still a failed change.
    r8_start = next(f.started_at for f in facts if f.revert_of is not None)
    before_revert = kpis.compute(facts, since=T0 + 5 * DAY, until=r8_start - 1)
    assert value(before_revert.overall, "change_failure_rate") == 1 / 3
    web = kpis.compute(facts, since=T0 - DAY, until=UNTIL, stack="staging", service="web")
    assert [s.label for s in web.scopes] == ["overall", "staging", "staging/web"]
    assert value(web.overall, "rollback_success_rate") == 0.0
    assert web.overall.rollouts == 1


def test_only_restricts_to_given_rollouts_and_their_period(scenario: Scenario, facts: list[RolloutFacts]) -> None:
    ids = frozenset({scenario.ids["r6"], scenario.ids["r7"]})
    rep = kpis.compute(facts, since=T0, until=scenario.starts["r6"] + 2 * DAY, only=ids)
    assert rep.period_start == scenario.starts["r6"]
    assert rep.overall.rollouts == 2
    assert value(rep.overall, "deployment_frequency") == 2 / 2


def test_an_unfinished_rollout_is_in_progress_not_a_failure(tmp_path: Path) -> None:
    from kpi_scenario import Crash, ScriptedTraffic, SlowTarget

    from infra.rollout.analysis import ThresholdAnalysis
    from infra.rollout.clock import FakeClock
    from infra.rollout.engine import Engine
    from infra.rollout.journal import SqliteJournal
    from infra.rollout.lock import SqliteLock
    from infra.rollout.scheduler import canary_plan
    from infra.rollout.seams import StackName
    from infra.settings.rollout import RolloutSettings

    def die() -> None:
        raise Crash

    db = tmp_path / "j.db"
    clock = FakeClock(T0)
    journal = SqliteJournal(db)
    engine = Engine(target=SlowTarget(clock), analysis=ThresholdAnalysis(RolloutSettings(),
                                                                         ScriptedTraffic(during={1: die})),
                    journal=journal, lock=SqliteLock(db, clock), clock=clock, poll=30.0)
    with pytest.raises(Crash):
        engine.start(stack=StackName("dev"), service="web", image="web:2", plan=canary_plan([50, 100], interval=30.0,
                                                                                           threshold=1))
    rep = kpis.compute(kpis.load(journal), since=T0, until=T0 + DAY)
    assert (rep.overall.rollouts, rep.overall.in_progress) == (1, 1)
    assert value(rep.overall, "change_failure_rate") is None  # no finished rollout: no rate at all
    assert value(rep.overall, "deployment_frequency") == 0.0
    assert rep.overall.metric("deployment_frequency").met is False


def test_nonsensical_traffic_counts_are_not_evidence() -> None:
    from components.spec import Strategy
    from infra.rollout.entries import parse_all
    from infra.rollout.journal import Entry, RolloutRecord
    from infra.rollout.scheduler import canary_plan, started
    from infra.rollout.seams import JSONValue, RolloutId, StackName, TrafficState

    rid = RolloutId("r")
    record = RolloutRecord(rid, StackName("s"), "web", "web:2", Strategy.CANARY, Phase.PROMOTED, T0, T0)
    bad: list[JSONValue] = [
        {"baseline": {"requests": 10, "errors": 11}}, {"baseline": {"requests": -1, "errors": 0}},
        {"baseline": {"requests": "10", "errors": 0}}, {"baseline": {"requests": True, "errors": 0}},
        {"baseline": None}, "junk"]
    first = started(stack=StackName("s"), service="web", image="web:2",
                    baseline=TrafficState(Strategy.CANARY, "web:1"), plan=canary_plan([50], interval=1, threshold=1))
    raw = [Entry(1, rid, EntryKind.STARTED, first.to_json(), T0)]
    raw += [Entry(i + 2, rid, EntryKind.ANALYSIS, {"verdict": "pass", "traffic": t}, T0 + i) for i, t in enumerate(bad)]
    raw.append(Entry(9, rid, EntryKind.ANALYSIS, {"verdict": "pass", "traffic": {"baseline": {"requests": 7,
                                                                                               "errors": 1}}}, T0))
    f = kpis.facts(record, parse_all(raw))
    assert (f.stable_requests, f.stable_errors) == (7, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", UNTIL - 30 * DAY), ("12h", UNTIL - 12 * 3600), ("2w", UNTIL - 14 * DAY), ("90m", UNTIL - 5400),
    ("2023-11-20", datetime(2023, 11, 20, tzinfo=UTC).timestamp()),
    ("2023-11-20T12:00:00+01:00", datetime(2023, 11, 20, 11, tzinfo=UTC).timestamp()),
])
def test_since_accepts_look_backs_and_dates(text: str, expected: float) -> None:
    assert kpis.parse_since(text, UNTIL) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "-3d", "0d", "3y", "1e9d", "yesterday", "2099-01-01", "[red]x"])
def test_since_rejects_anything_else_naming_the_flag(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--since must"):
        kpis.parse_since(text, UNTIL)


def test_failed_promotions_count_once_and_a_lying_promotion_is_not_a_success(tmp_path: Path) -> None:
    from fakes import FakeTarget
    from rollout_rig import make_rig

    class SilentPromote(FakeTarget):
        def promote(self) -> None:
            self._call("promote")  # says yes, does nothing: the stable version is still the old one

    rig = make_rig(tmp_path / "a", target=SilentPromote())
    lying = rig.start("app:2.0")
    assert (lying.phase, lying.verified) == (Phase.PROMOTED, False)
    raising = make_rig(tmp_path / "b", target=FakeTarget(fail={"promote": [1]})).start("app:3.0")
    assert raising.phase is Phase.ROLLED_BACK  # the promote action raised, so the engine rolled back

    lied = kpis.compute(kpis.load(rig.journal), since=0, until=UNTIL)
    assert value(lied.overall, "change_failure_rate") == 1.0
    assert value(lied.overall, "deployment_success_rate") == 0.0
    assert value(lied.overall, "rollback_rate") == 0.0  # nothing was rolled back
    assert value(lied.overall, "deployment_time") is not None  # it did reach promotion

    from infra.rollout.journal import SqliteJournal

    journal = SqliteJournal(tmp_path / "b" / ".gantry" / "journal.db")
    raised = kpis.compute(kpis.load(journal), since=0, until=UNTIL)
    f = kpis.load(journal)[0]
    assert f.promote_failed and f.rolled_back
    # Rolled back and a failed promotion: one failed change, not two.
    assert raised.overall.metric("change_failure_rate").detail == {"failed": 1, "rollouts": 1}
    assert value(raised.overall, "rollback_success_rate") == 1.0


# --------------------------------------------------------------------------- invariants


def _facts_strategy() -> st.SearchStrategy[tuple[RolloutFacts, ...]]:
    @st.composite
    def one(draw: st.DrawFn, i: int) -> RolloutFacts:
        start = draw(st.floats(T0, T0 + 20 * DAY, allow_nan=False))
        phase = draw(st.sampled_from(list(Phase)))
        rolled = draw(st.booleans()) if phase is not Phase.PROMOTED else False
        rolled = rolled or phase in (Phase.ROLLED_BACK, Phase.FAILED)
        decided = start + draw(st.floats(0, 600)) if rolled else None
        reverted = None if decided is None or phase is Phase.FAILED else decided + draw(st.floats(0, 300))
        promoted = start + draw(st.floats(0, 900)) if phase is Phase.PROMOTED else None
        requests = draw(st.integers(0, 10_000))
        return RolloutFacts(
            id=RolloutId(f"r{i}"), stack=draw(st.sampled_from(["a", "b"])), service=draw(st.sampled_from(["x", "y"])),
            started_at=start, phase=phase,
            committed_at=draw(st.none() | st.floats(start - 10 * DAY, start)),
            revert_of=draw(st.none() | st.sampled_from([RolloutId("r0"), RolloutId("r1")])),
            promoted_at=promoted, promote_failed=draw(st.booleans()), verified=draw(st.none() | st.booleans()),
            rollback_decided_at=decided, reverted_at=reverted,
            first_failed_analysis_at=None if decided is None else start + (decided - start) * draw(st.floats(0, 1)),
            stable_requests=requests, stable_errors=draw(st.integers(0, requests)))

    return st.integers(0, 12).flatmap(lambda n: st.tuples(*(one(i) for i in range(n))))


@settings(max_examples=150, deadline=None)
@given(_facts_strategy())
def test_invariants_hold_for_any_journal(rollouts: tuple[RolloutFacts, ...]) -> None:
    rep = kpis.compute(rollouts, since=T0, until=T0 + 21 * DAY)
    o = rep.overall
    for s in rep.scopes:
        for m in s.metrics:
            if m.value is None:
                assert m.met is None or m.key == "deployment_frequency"
                continue
            assert m.value >= 0
            if m.definition.unit.value == "ratio":
                assert 0 <= m.value <= 1
    cfr, rb, ok = (value(o, k) for k in ("change_failure_rate", "rollback_rate", "deployment_success_rate"))
    if cfr is not None and rb is not None and ok is not None:
        assert cfr >= rb  # every rollback is a change failure
        assert ok + rb <= 1 + 1e-12  # a rollout is promoted or rolled back, never both
    services = [s for s in rep.scopes if s.kind is ScopeKind.SERVICE]
    stacks = [s for s in rep.scopes if s.kind is ScopeKind.STACK]
    assert sum(s.rollouts for s in services) == sum(s.rollouts for s in stacks) == o.rollouts
    assert o.rollouts == len(rollouts)
    total = o.metric("zero_downtime").detail
    assert total["stable_requests"] == sum(f.stable_requests for f in rollouts)
    assert sum(w.metric("deployment_frequency").detail["deployments"] or 0 for w in rep.weeks) == (
        o.metric("deployment_frequency").detail["deployments"])


@pytest.mark.parametrize(("per_day", "days", "shown", "basis"), [
    (2 / 0.0021, 0.0021, "952/day (one per 91 s)", "2 promoted in 3 min 01 s"),
    (5 / 14, 14.0, "0.357/day (one per 2.8 d)", "5 promoted in 14.0 d"),
    (0.0, 7.0, "0/day", "0 promoted in 7.0 d"),
])
def test_frequency_is_readable_at_any_scale(per_day: float, days: float, shown: str, basis: str) -> None:
    from infra.rollout.kpi_formats import basis_text, value_text

    n = round(per_day * days)
    each = days * 1440 / n if n else None
    m = kpis.MetricValue("deployment_frequency", per_day, n, None,
                         {"deployments": n, "period_days": days, "minutes_per_deployment": each})
    assert (value_text(m), basis_text(m)) == (shown, basis)
