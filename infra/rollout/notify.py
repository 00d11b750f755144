"""Rollout notifications: Slack-compatible and generic JSON webhooks (and a no-op), with secret values masked.

Registers the ``webhook``, ``slack`` and ``noop`` notifier backends. The scheduler calls ``Notifier.notify``
on started, step passed, promoted, rolled back and failed. A notifier never raises: a lost notification
must not change a rollout's outcome, so every delivery failure is logged once, at WARNING, with the URL
and every other secret masked, and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from components.validation import Violation, raise_first
from infra import registry
from infra.errors import InputError
from infra.rollout.backends import RolloutNotifier
from infra.rollout.masking import Masker
from infra.rollout.seams import Event, EventKind, JSONValue, Notifier
from infra.secret_value import SecretValue
from infra.settings.rollout import refuse_secure

if TYPE_CHECKING:
    import httpx

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
        import httpx

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
    """Sends each event to several notifiers; one failing never stops the others (its error is logged, masked)."""

    def __init__(self, notifiers: Sequence[Notifier], *, secrets: Iterable[str] = ()) -> None:
        self.notifiers = tuple(notifiers)
        self.masker = Masker(secrets)

    def notify(self, event: Event) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(event)
            except Exception as exc:  # a third-party notifier broke its contract: log it, masked, and go on
                log.warning("notifier %s raised; event %s dropped for it: %s", type(notifier).__name__,
                            event.kind.value, self.masker.mask(f"{type(exc).__name__}: {exc}"))


class NoopNotifier:
    """Sends nothing (Flagger's no-op notifier): a stack can keep a notifications entry switched off."""

    def notify(self, event: Event) -> None:
        return None


# --------------------------------------------------------------------------- the backends


class UrlNotifierSettings(RolloutNotifier):
    """A webhook URL, given in the stack (``url``) or, as a secret should be, by variable name (``urlEnv``)."""

    url: Annotated[str | None, BeforeValidator(lambda v: refuse_secure(
        v, "put the URL in the pipeline's secret store and set urlEnv to the variable's name"))] = Field(
        default=None, description="Webhook URL. Default: none (use urlEnv).")
    url_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the URL, so the secret stays in the pipeline's "
                    "secret store. Default: none.")

    @model_validator(mode="after")
    def _one_source(self) -> UrlNotifierSettings:
        if (self.url is None) == (self.url_env is None):
            raise_first([Violation("url", "set exactly when urlEnv is not", "[hidden]" if self.url else None)])
        return self

    def resolve_url(self, index: int, environ: Mapping[str, str]) -> str:
        url = self.url
        if self.url_env is not None:
            url = environ.get(self.url_env)
            if not url:
                raise InputError(f"rollout.notifications[{index}].urlEnv must name a set environment variable, "
                                 f"but {self.url_env} is unset or empty")
        if url is None or isinstance(url, SecretValue):
            # A `secure:` value can only be decrypted by the Pulumi CLI; don't post to a placeholder.
            raise InputError(f"rollout.notifications[{index}].url must be a plain value, but a secure: value was "
                             "given; Gantry cannot decrypt it offline: put the URL in the pipeline's secret store "
                             "and set urlEnv to the variable's name")
        return url

    def secret_values(self, index: int, environ: Mapping[str, str]) -> list[str]:
        return [self.resolve_url(index, environ)]


@registry.NOTIFIERS.register
class WebhookSettings(UrlNotifierSettings):
    """Generic JSON webhook (kind, rollout, stack, service, message, data)."""

    kind: Literal["webhook"] = "webhook"

    def build(self, index: int, environ: Mapping[str, str], secrets: Sequence[str]) -> Notifier:
        return WebhookNotifier(self.resolve_url(index, environ), secrets=secrets)


@registry.NOTIFIERS.register
class SlackSettings(UrlNotifierSettings):
    """Slack incoming webhook."""

    kind: Literal["slack"] = "slack"

    def build(self, index: int, environ: Mapping[str, str], secrets: Sequence[str]) -> Notifier:
        return SlackNotifier(self.resolve_url(index, environ), secrets=secrets)


@registry.NOTIFIERS.register
class NoopNotifierSettings(RolloutNotifier):
    """A notifier that sends nothing."""

    kind: Literal["noop"] = "noop"

    def build(self, index: int, environ: Mapping[str, str], secrets: Sequence[str]) -> Notifier:
        return NoopNotifier()
