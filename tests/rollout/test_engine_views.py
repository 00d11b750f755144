"""The engine's views (live frame, --json lines) and the factory's wiring of settings into parts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fakes import FakeAnalysis
from rich.console import Console
from rollout_rig import make_rig

from components.spec import Strategy
from infra.config import SecretValue
from infra.errors import InputError
from infra.rollout import factory
from infra.rollout.entries import parse_all
from infra.rollout.hooks import CommandHook, HttpHook
from infra.rollout.scheduler import StepEffect, replay
from infra.rollout.seams import HookPhase, JSONObject, Verdict
from infra.rollout.view import JsonView, remaining_seconds, render
from infra.settings.rollout import RolloutSettings


def _text(renderable: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None).print(renderable)
    return buffer.getvalue()


def test_json_view_prints_one_event_per_journal_entry(tmp_path: Path) -> None:
    out = io.StringIO()
    rig = make_rig(tmp_path, analysis=FakeAnalysis([Verdict.PASS, Verdict.FAIL]))
    rig.engine.observer = JsonView(out)
    outcome = rig.start()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    entries = rig.entries(outcome.rollout_id)
    assert [line["seq"] for line in lines] == [e.seq for e in entries]
    assert [line["event"] for line in lines] == [e.kind.value for e in entries]
    assert lines[-1]["phase"] == "rolled_back"
    analysis = next(line for line in lines if line["event"] == "analysis")
    assert analysis["weight"] == 10 and analysis["data"]["verdict"] == "pass"
    checkpoint = next(line for line in lines if line["event"] == "checkpoint")
    assert checkpoint["data"]["state"] == {"file": None, "keys": ["canary_image", "canary_weight", "stable_image",
                                                                  "strategy"]}, "summarised, not dumped"


def test_live_frame_shows_stage_weights_gates_and_time_left(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=FakeAnalysis([Verdict.PASS, Verdict.FAIL]))
    outcome = rig.start()
    entries = rig.entries(outcome.rollout_id)
    mid = replay(parse_all(entries[:10]))  # 10% analysed and advanced, 25% applied
    checks: list[JSONObject] = [{"name": "error-rate", "value": 0.031, "limit": 0.05, "verdict": "pass",
                                 "detail": "31/1000"}]
    text = _text(render(mid, checks, until=mid.step_started_at + 30, now=mid.step_started_at + 10))
    for part in ("canary 25%", "stable 75% / canary 25%", "error-rate", "0.031", "0.05", "pass",
                 "20s until the next analysis", "80s to promotion", "0/1", "0/3"):
        assert part in text, part


def test_remaining_time_counts_the_steps_ahead(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    outcome = rig.start()
    first = replay(parse_all(rig.entries(outcome.rollout_id)[:6]))  # 10% just applied
    assert first.current_step.weight == 10
    assert remaining_seconds(first, first.step_started_at + 30, first.step_started_at) == 30 + 3 * 30


def test_make_plan_linear_and_bluegreen() -> None:
    plan = factory.make_plan(RolloutSettings(step_weight=30, max_weight=90, interval="10s"), Strategy.CANARY)
    assert [s.weight for s in plan.steps] == [30, 60, 90]
    assert plan.interval == 10.0
    bg = factory.make_plan(RolloutSettings(interval="30s", post_promotion_window="60s", scale_down_delay="5m"),
                           Strategy.BLUEGREEN)
    assert [s.effect for s in bg.steps] == [StepEffect.OBSERVE, StepEffect.SWITCH, StepEffect.OBSERVE]
    assert bg.scale_down_delay == 300.0


def test_make_hooks_builds_http_and_argv_hooks_with_timeouts() -> None:
    settings = RolloutSettings.model_validate({"hooks": [
        {"name": "smoke", "phase": "step", "url": "http://127.0.0.1:9/smoke", "timeout": "5s"},
        {"name": "migrate", "phase": "pre-rollout", "argv": ["./migrate", "--check"]},
    ]})
    hooks = factory.make_hooks(settings)
    assert isinstance(hooks[0], HttpHook) and hooks[0].timeout == 5.0 and hooks[0].phase is HookPhase.STEP
    assert isinstance(hooks[1], CommandHook) and list(hooks[1].argv) == ["./migrate", "--check"]


@pytest.mark.parametrize(("hook", "error"), [
    ({"name": "x", "phase": "step"}, "kind must be one of command, http"),
    ({"name": "x", "phase": "step", "url": "http://a", "argv": ["b"]}, "kind must be one of command, http"),
    ({"kind": "http", "name": "x", "phase": "step", "url": "http://a", "argv": ["b"]}, "argv"),
    ({"kind": "command", "name": "x", "phase": "step", "url": "http://a", "argv": ["b"]}, "url"),
])
def test_a_hook_is_exactly_one_of_url_or_argv(hook: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RolloutSettings.model_validate({"hooks": [hook]})


def test_notifier_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RolloutSettings.model_validate({"notifications": [{"kind": "slack", "urlEnv": "SLACK_HOOK"}]})
    monkeypatch.delenv("SLACK_HOOK", raising=False)
    with pytest.raises(InputError, match=r"notifications\[0\].urlEnv must name a set environment variable, "
                                         r"but SLACK_HOOK is unset"):
        factory.make_notifier(settings)
    monkeypatch.setenv("SLACK_HOOK", "https://hooks.example.com/T000/B000/secret")
    assert factory.make_notifier(settings) is not None


def test_a_secure_notification_url_is_refused_not_posted_to() -> None:
    settings = RolloutSettings.model_validate({"notifications": [{"url": "https://x"}]})
    settings = settings.model_copy(update={"notifications": [
        settings.notifications[0].model_copy(update={"url": SecretValue("notifications")})]})
    with pytest.raises(InputError, match=r"but a secure: value was given; .*set urlEnv"):
        factory.make_notifier(settings)
    assert factory.make_notifier(RolloutSettings()) is None
