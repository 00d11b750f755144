"""Every step x every failure kind: the scheduler, driven by FakeTarget, FakeMetrics (through part B's real
ThresholdAnalysis gates) and a fake clock, rolls back at the failing step, or ends FAILED (exit 4) when
the rollback's own `up` fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeHook, FakeMetrics, FakeTarget
from rollout_rig import make_rig

from components.spec import Color, Strategy
from infra.errors import ExitCode
from infra.rollout.analysis import MetricGate, ThresholdAnalysis
from infra.rollout.journal import EntryKind
from infra.rollout.seams import EventKind, HookPhase, MetricQuery, Phase, StackName
from infra.settings.rollout import RolloutSettings

WEIGHTS = (10, 25, 50, 100)
GOOD = {"error_rate": 0.01, "p95_ms": 300.0, "restarts": 0.0}
BAD = {"error_rate": ("error_rate", 0.2), "latency": ("p95_ms", 3500.0), "restarts": ("restarts", 9.0)}
KINDS = ("error_rate", "latency", "restarts", "hook", "metrics_offline", "up_failure", "rollback_up_failure")


def seed_analysis(metrics: FakeMetrics) -> ThresholdAnalysis:
    """The seed's rollback rules as part B's gates: error rate > 5%, p95 > 2000 ms, > 5 restarts."""
    gates = [MetricGate("error-rate", metrics, MetricQuery("error_rate", "error_rate"), 0.05),
             MetricGate("p95-latency", metrics, MetricQuery("p95_ms", "p95_ms"), 2000.0),
             MetricGate("restarts", metrics, MetricQuery("restarts", "restarts"), 5.0)]
    return ThresholdAnalysis(RolloutSettings(judge="threshold"), None, gates)


class WatchedTarget(FakeTarget):
    """Records every live state after each call, and takes metrics offline when a given step goes live."""

    def __init__(self, strategy: Strategy, metrics: FakeMetrics, offline_at: tuple[str, object] | None, **kw: object
                 ) -> None:
        super().__init__(strategy, "app:1.0", **kw)  # type: ignore[arg-type]
        self.metrics = metrics
        self.offline_at = offline_at
        self.history = [self.current()]

    def set_weights(self, canary_weight: int) -> None:
        super().set_weights(canary_weight)
        self.history.append(self.current())
        if self.offline_at == ("weight", canary_weight):
            self.metrics.online = False

    def switch(self, color: Color) -> None:
        super().switch(color)
        self.history.append(self.current())
        if self.offline_at == ("switch", color):
            self.metrics.online = False

    def prepare(self, image: str) -> None:
        super().prepare(image)
        if self.offline_at == ("prepare", image):
            self.metrics.online = False


def build(tmp: Path, strategy: Strategy, kind: str, step: int):  # type: ignore[no-untyped-def]
    values: dict[str, list[float]] = {k: [v] for k, v in GOOD.items()}
    metric_kind = "error_rate" if kind == "rollback_up_failure" else kind
    if metric_kind in BAD:
        name, bad = BAD[metric_kind]
        values[name] = [GOOD[name]] * step + [bad]
    metrics = FakeMetrics(values)
    offline_at: tuple[str, object] | None = None
    if kind == "metrics_offline":
        if strategy is Strategy.CANARY:
            offline_at = ("weight", WEIGHTS[step])
        else:
            offline_at = ("prepare", "app:2.0") if step == 0 else ("switch", Color.GREEN)
    fail: dict[str, set[int]] = {}
    fail_always: list[str] = []
    if kind == "up_failure":
        if strategy is Strategy.CANARY:
            fail["set_weights"] = {step + 1}
        else:
            fail["prepare" if step == 0 else "switch"] = {1}
    if kind == "rollback_up_failure":
        fail_always.append("revert")
    target = WatchedTarget(strategy, metrics, offline_at, fail=fail, fail_always=fail_always)
    hooks = []
    if kind == "hook":
        hooks.append(FakeHook("smoke", HookPhase.STEP, [True] * step + [False]))
    rig = make_rig(tmp, strategy=strategy, analysis=seed_analysis(metrics), target=target, hooks=hooks)
    return rig, target, metrics


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("step", range(len(WEIGHTS)))
def test_canary_failure_at_every_step(tmp_path: Path, kind: str, step: int) -> None:
    rig, target, _ = build(tmp_path, Strategy.CANARY, kind, step)
    outcome = rig.start("app:2.0")
    rid = outcome.rollout_id
    applied = [s.canary_weight for s in target.history]
    # Never advanced past the failing step, and every weight stayed within 0..100.
    # An `up` that fails at step k leaves the last good weight live; any other failure is caught at step k.
    highest = (WEIGHTS[step - 1] if step else 0) if kind == "up_failure" else WEIGHTS[step]
    assert max(applied) == highest
    assert all(0 <= w <= 100 for w in applied)
    decisions = [e.data["decision"] for e in rig.of(rid, EntryKind.DECISION)]
    assert decisions[-1] == "rollback"
    assert decisions.count("advance") == step
    if kind == "rollback_up_failure":
        assert outcome.phase is Phase.FAILED
        assert outcome.exit_code is ExitCode.OPERATOR
        assert "rollback failed" in outcome.reason
        assert rig.notifier.events[-1].kind is EventKind.FAILED
        assert rig.of(rid, EntryKind.ERROR)[-1].data["action"] == "revert"
    else:
        assert outcome.phase is Phase.ROLLED_BACK
        assert outcome.exit_code is ExitCode.FAILED
        live = target.current()
        assert (live.stable_image, live.canary_weight) == ("app:1.0", 0)
        assert outcome.verified and outcome.mismatches == ()
        assert rig.notifier.events[-1].kind is EventKind.ROLLED_BACK
    # The version is quarantined either way.
    assert rig.journal.quarantined(StackName("dev"), "web", "app:2.0") is not None
    # The failing gate is named in the journal.
    if kind in BAD or kind == "rollback_up_failure":
        failing = [c for c in rig.of(rid, EntryKind.ANALYSIS)[-1].data["checks"] if c["verdict"] == "fail"]
        gate = {"error_rate": "error-rate", "latency": "p95-latency", "restarts": "restarts",
                "rollback_up_failure": "error-rate"}[kind]
        assert [c["name"] for c in failing] == [gate]
    if kind == "hook":
        failing = [c["name"] for c in rig.of(rid, EntryKind.ANALYSIS)[-1].data["checks"] if c["verdict"] == "fail"]
        assert failing == ["hook:smoke"]
    if kind == "metrics_offline":
        checks = rig.of(rid, EntryKind.ANALYSIS)[-1].data["checks"]
        assert {c["verdict"] for c in checks} == {"fail"}
    if kind == "up_failure":
        error = rig.of(rid, EntryKind.ERROR)[-1]
        assert error.data["action"] == "set_weight"
        assert "injected failure" in str(error.data["message"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("step", [0, 1], ids=["pre-promotion", "post-promotion"])
def test_bluegreen_failure_before_and_after_the_switch(tmp_path: Path, kind: str, step: int) -> None:
    rig, target, _ = build(tmp_path, Strategy.BLUEGREEN, kind, step)
    outcome = rig.start("app:2.0")
    switched = [s.active_color for s in target.history]
    if step == 0:
        assert Color.GREEN not in switched, "a failing preview must never be switched to"
    if kind == "rollback_up_failure":
        assert outcome.phase is Phase.FAILED and outcome.exit_code is ExitCode.OPERATOR
        return
    assert outcome.phase is Phase.ROLLED_BACK
    live = target.current()
    assert (live.active_color, live.stable_image) == (Color.BLUE, "app:1.0")
    assert outcome.verified


@pytest.mark.parametrize("strategy", list(Strategy))
def test_healthy_metrics_promote(tmp_path: Path, strategy: Strategy) -> None:
    rig, target, metrics = build(tmp_path, strategy, "none", 0)
    outcome = rig.start("app:2.0")
    assert outcome.phase is Phase.PROMOTED and outcome.exit_code is ExitCode.OK
    assert target.current().stable_image == "app:2.0"
    assert len(metrics.queries) == 3 * len(rig.plan.steps)
    assert rig.journal.quarantined(StackName("dev"), "web", "app:2.0") is None
