"""Notifiers: Slack-compatible and generic webhooks against a real local server; masking; never raising."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from metric_servers import App, free_port, serve

from infra.errors import InputError
from infra.rollout.masking import Masker
from infra.rollout.notify import FanOut, SlackNotifier, WebhookNotifier
from infra.rollout.seams import Event, EventKind, RolloutId, StackName

DB_PASSWORD = "hunter2-very-secret"


def event(kind: EventKind = EventKind.ROLLED_BACK) -> Event:
    return Event(kind, RolloutId("r42"), StackName("prod"), "web",
                 f"error rate 9% > 5%; db password={DB_PASSWORD}",
                 {"weight": 25, "image": "ghcr.io/acme/web:1.1", "detail": f"conn {DB_PASSWORD}",
                  "checks": [{"name": "error-rate", "value": 0.09}]})


@pytest.fixture
def app() -> Iterator[App]:
    routes = {"/slack": lambda _: (200, "ok"), "/hook": lambda _: (202, ""), "/broken": lambda _: (500, "no")}
    with serve(App(routes=routes)) as running:
        yield running


def last_body(app: App) -> dict[str, Any]:
    body = json.loads(app.requests[-1][2])
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("kind", list(EventKind))
def test_slack_message_for_every_event_kind(app: App, kind: EventKind) -> None:
    SlackNotifier(f"{app.url}/slack", secrets=[DB_PASSWORD]).notify(event(kind))
    body = last_body(app)
    text = str(body["text"])
    assert "prod/web rollout r42" in text and kind.value.replace("_", " ") in text
    assert DB_PASSWORD not in json.dumps(body)
    assert body["blocks"][1]["text"]["type"] == "mrkdwn"


def test_generic_webhook_carries_structured_masked_data(app: App) -> None:
    WebhookNotifier(f"{app.url}/hook", secrets=[DB_PASSWORD]).notify(event())
    body = last_body(app)
    assert body["kind"] == "rolled_back" and body["stack"] == "prod" and body["service"] == "web"
    assert body["data"]["weight"] == 25 and body["data"]["checks"][0]["value"] == 0.09
    assert DB_PASSWORD not in json.dumps(body) and "***" in body["data"]["detail"]


def test_secret_looking_values_are_masked_even_unregistered(app: App) -> None:
    WebhookNotifier(f"{app.url}/hook").notify(event())
    body = last_body(app)
    assert DB_PASSWORD not in str(body["message"]), "password=... is masked by its shape"
    assert DB_PASSWORD in str(body["data"]), "a bare value is only masked once registered as a secret"


def test_kinds_filter(app: App) -> None:
    notifier = WebhookNotifier(f"{app.url}/hook", kinds=[EventKind.FAILED])
    notifier.notify(event(EventKind.STARTED))
    assert app.requests == []
    notifier.notify(event(EventKind.FAILED))
    assert len(app.requests) == 1


def test_never_raises_and_never_logs_the_webhook_token(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXsecrettokenXXXX"
    with caplog.at_level(logging.WARNING):
        SlackNotifier(url, timeout=1).notify(event())
    assert "not delivered" in caplog.text
    assert "XXXXsecrettokenXXXX" not in caplog.text


def test_refused_delivery_is_logged_not_raised(app: App, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        WebhookNotifier(f"{app.url}/broken").notify(event())
    assert "refused: HTTP 500" in caplog.text


def test_fan_out_survives_a_raising_notifier(app: App) -> None:
    class Raises:
        def notify(self, event: Event) -> None:
            raise RuntimeError("bug")

    FanOut([Raises(), WebhookNotifier(f"{app.url}/hook")]).notify(event())
    assert len(app.requests) == 1


def test_a_notifier_that_raises_is_logged_with_its_secrets_masked(caplog: pytest.LogCaptureFixture) -> None:
    """No layer swallows a notifier's error silently: the fan-out logs it once, masked."""
    token = "https://hooks.example.test/services/T000/B000/abcdefSECRET"

    class Leaky:
        def notify(self, event: Event) -> None:
            raise ConnectionError(f"cannot post to {token}")

    with caplog.at_level(logging.WARNING, logger="infra.rollout.notify"):
        FanOut([Leaky()], secrets=[token]).notify(event())
    (record,) = caplog.records
    assert "Leaky raised" in record.getMessage() and "ConnectionError" in record.getMessage()
    assert token not in record.getMessage()


def test_the_engine_logs_a_notifier_that_breaks_the_contract(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from rollout_rig import make_rig

    secret = "s3cr3t-notifier-token-0001"

    class Raises:
        def notify(self, event: Event) -> None:
            raise RuntimeError(f"broken with {secret}")

    rig = make_rig(tmp_path)
    rig.engine.notifier = Raises()
    rig.engine.masker = Masker([secret])
    with caplog.at_level(logging.WARNING, logger="infra.rollout.engine"):
        outcome = rig.start("app:2.0")
    assert outcome.phase.value == "promoted"  # a broken notifier never changes the outcome
    messages = [r.getMessage() for r in caplog.records if "notifier Raises raised" in r.getMessage()]
    assert messages and all(secret not in m and "RuntimeError" in m for m in messages)


def test_noop_notifier_sends_nothing_and_needs_no_url(app: App) -> None:
    from infra.rollout import factory
    from infra.settings.rollout import RolloutSettings

    settings = RolloutSettings.model_validate({"notifications": [{"kind": "noop"}]})
    notifier = factory.make_notifier(settings, environ={})
    assert notifier is not None and factory.known_secrets(settings, environ={}) == ()
    notifier.notify(event())
    assert app.requests == []


def test_bad_url_names_the_field_without_echoing_it() -> None:
    with pytest.raises(InputError, match=r"notifications\.slack\.url must be an http\(s\) URL") as info:
        SlackNotifier("hooks.slack.com/services/T/B/sekret")
    assert "sekret" not in str(info.value)


@pytest.mark.parametrize(("text", "hidden"), [
    ("https://hooks.slack.com/services/T0/B0/abcDEF123", "abcDEF123"),
    ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi.x.y"),
    ('{"password": "pa55word!"}', "pa55word!"),
    ("api_key=ZZZ-123-456", "ZZZ-123-456"),
    ("key AKIAABCDEFGHIJKLMNOP used", "ABCDEFGHIJKLMNOP"),
    ("postgres://app:dbpa55@db:5432/x", "dbpa55"),
])
def test_masking_patterns(text: str, hidden: str) -> None:
    masked = Masker().mask(text)
    assert hidden not in masked and "***" in masked


def test_masking_registered_values_longest_first_and_ignores_tiny_values() -> None:
    masker = Masker(["abcd", "abcdefgh", "on"])
    assert masker.mask("x abcdefgh y abcd z on") == "x *** y *** z on"
    assert masker.mask_json({"abcd": ["abcd", 1, None]}) == {"***": ["***", 1, None]}
