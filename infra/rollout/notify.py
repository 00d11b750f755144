"""Rollout notifications: Slack-compatible and generic JSON webhooks, with secret values masked.

The scheduler calls ``Notifier.notify`` on started, step passed, promoted, rolled back and failed.
A notifier never raises: a lost notification must not change a rollout's outcome, so delivery
failures are logged (masked) and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import httpx

from infra.errors import InputError
from infra.rollout.masking import Masker
from infra.rollout.seams import Event, EventKind, JSONValue, Notifier

log = logging.getLogger(__name__)

_EMOJI = {
    EventKind.STARTED: ":rocket:",
    EventKind.STEP_PASSED: ":white_check_mark:",
    EventKind.PROMOTED: ":tada:",
    EventKind.ROLLED_BACK: ":rewind:",
    EventKind.FAILED: ":rotating_light:",
}


def _check_url(field: str, url: str) -> None:
    if not url.startswith(("http://", "https://")):
        # The URL itself is often a secret (Slack puts the token in it): name the field, not the value.
        raise InputError(f"{field} must be an http(s) URL, but a value without http:// or https:// was given")


class _WebhookBase:
    url_field = "notifications.webhook.url"

    def __init__(self, url: str, *, secrets: Iterable[str] = (), timeout: float = 5.0,
                 headers: Mapping[str, str] | None = None, kinds: Sequence[EventKind] | None = None,
                 client: httpx.Client | None = None) -> None:
        _check_url(self.url_field, url)
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.kinds = frozenset(kinds) if kinds is not None else frozenset(EventKind)
        # The webhook URL and header values are secrets too: they never appear in a message or a log.
        self.masker = Masker([*secrets, url, *self.headers.values()])
        self._client = client

    def _payload(self, event: Event) -> Mapping[str, JSONValue]:
        raise NotImplementedError

    def notify(self, event: Event) -> None:
        if event.kind not in self.kinds:
            return
        try:
            payload = self._payload(event)
            client = self._client or httpx.Client(timeout=self.timeout, follow_redirects=False)
            try:
                response = client.post(self.url, json=payload, headers=self.headers)
            finally:
                if self._client is None:
                    client.close()
            if response.status_code >= 300:
                log.warning("notification %s was refused: HTTP %s", event.kind.value, response.status_code)
        except Exception as exc:  # never raises, by contract
            log.warning("notification %s was not delivered: %s", event.kind.value,
                        self.masker.mask(f"{type(exc).__name__}: {exc}"))


class WebhookNotifier(_WebhookBase):
    """POSTs the event as a JSON object: kind, rollout, stack, service, message, data (all masked)."""

    def _payload(self, event: Event) -> Mapping[str, JSONValue]:
        return {
            "kind": event.kind.value,
            "rollout": event.rollout_id,
            "stack": event.stack,
            "service": event.service,
            "message": self.masker.mask(event.message),
            "data": self.masker.mask_json(event.data),
        }


class SlackNotifier(_WebhookBase):
    """POSTs a Slack incoming-webhook message (``text`` plus one section block with the details)."""

    url_field = "notifications.slack.url"

    def _payload(self, event: Event) -> Mapping[str, JSONValue]:
        title = (f"{_EMOJI[event.kind]} {event.stack}/{event.service} rollout {event.rollout_id}: "
                 f"{event.kind.value.replace('_', ' ')}")
        lines = [f"*{k}*: {v}" for k, v in sorted(event.data.items())]
        body = self.masker.mask("\n".join([event.message, *lines]))
        return {
            "text": self.masker.mask(f"{title}: {event.message}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.masker.mask(title)[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
            ],
        }


class FanOut:
    """Sends each event to several notifiers; one failing never stops the others."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = tuple(notifiers)

    def notify(self, event: Event) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(event)
            except Exception:  # a third-party notifier broke its contract
                log.warning("notifier %s raised; event %s dropped for it", type(notifier).__name__, event.kind.value)
