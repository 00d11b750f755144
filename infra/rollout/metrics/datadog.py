"""The ``datadog`` metrics backend: Datadog's metrics query API (v1) as a gate provider.

A gate's ``expr`` is a Datadog metrics query (``sum:trace.http.request.errors{service:web}.as_count()``;
``$window`` and the query labels are filled as for Prometheus). Each analysis asks
``GET <site>/api/v1/query?from=<now - window>&to=<now>&query=<expr>`` with the ``DD-API-KEY`` and
``DD-APPLICATION-KEY`` headers, whose values come from the environment variables the stack names
(``apiKeyEnv``, ``appKeyEnv``), never from the stack file. The value is the sum over the returned series
of each one's last non-null point; no series or no point is no data (count 0), which fails safe. The keys
are secrets: they are masked in every message, and ``rollout`` masks them in every sink.

Datadog gives no per-version request counts here, so a rollout on it is judged by its ``gates``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from components.validation import Violation
from infra import registry
from infra.config import GantryConfig
from infra.errors import InputError
from infra.rollout.backends import MetricsContext, MetricsEndpoint, MetricsSource
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.masking import Masker
from infra.rollout.metrics.prometheus import render
from infra.rollout.seams import JSONValue, MetricQuery, MetricsProvider, Sample
from infra.settings.rollout import RolloutSettings

if TYPE_CHECKING:
    import httpx

DEFAULT_SITE = "https://api.datadoghq.com"
_ENV = r"^[A-Z_][A-Z0-9_]*$"


class DatadogProvider:
    """Runs metrics queries against ``site`` with an API key and an application key."""

    name = "datadog"

    def __init__(self, api_key: str, app_key: str, site: str = DEFAULT_SITE, timeout: float = 10.0,
                 client: httpx.Client | None = None, now: Callable[[], float] = time.time) -> None:
        import httpx

        if not site.startswith(("http://", "https://")):
            raise InputError(f"rollout.metrics.site must be an http(s) URL, but {site!r} was given")
        if not api_key or not app_key:
            raise InputError("rollout.metrics.apiKeyEnv and appKeyEnv must name set variables, but a key is empty")
        self.site = site.rstrip("/")
        self._headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key, "Accept": "application/json"}
        self._masker = Masker([api_key, app_key])
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._now = now
        """Unix seconds; injected by tests."""

    def _get(self, path: str, params: Mapping[str, str | int]) -> httpx.Response:
        import httpx

        try:
            return self._client.get(f"{self.site}{path}", params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(self._masker.mask(f"datadog at {self.site} is unreachable: {exc}")) from None

    def query(self, query: MetricQuery) -> Sample:
        expr = render(query.expr, query)
        to = int(self._now())
        start = to - max(1, math.ceil(query.window_seconds))
        response = self._get("/api/v1/query", {"from": start, "to": to, "query": expr})
        try:
            body = response.json()
        except ValueError:
            raise MetricsUnavailable(f"datadog answered HTTP {response.status_code} without JSON") from None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("status") == "error":
            error = body.get("error") or body.get("errors") if isinstance(body, dict) else None
            raise MetricsUnavailable(self._masker.mask(
                f"datadog rejected {expr!r}: HTTP {response.status_code} {error or ''}".strip()))
        lasts: list[float] = []
        points: list[float] = []
        for series in body.get("series") or []:
            values = [float(p[1]) for p in series.get("pointlist") or []
                      if isinstance(p, list) and len(p) == 2 and p[1] is not None]
            values = [v for v in values if not math.isnan(v)]
            if values:
                lasts.append(values[-1])
                points.extend(values)
        if not lasts:
            return Sample(value=math.nan, count=0)
        return Sample(value=sum(lasts), count=len(lasts), observations=tuple(points))

    def is_online(self) -> bool:
        """The API key is valid (``GET /api/v1/validate``)."""
        try:
            response = self._get("/api/v1/validate", {})
            return response.status_code == 200 and bool(response.json().get("valid"))
        except (MetricsUnavailable, ValueError, AttributeError):
            return False

    def close(self) -> None:
        self._client.close()


@registry.METRICS.register
class DatadogSettings(MetricsSource):
    """``rollout.metrics`` for Datadog: each gate's ``expr`` is a metrics query; keys come from the environment."""

    kind: Literal["datadog"] = "datadog"
    site: str = Field(default=DEFAULT_SITE, pattern=r"^https?://[^\s/]+(:\d+)?/?$",
                      description="API base URL of the Datadog site (https://api.datadoghq.eu, ...). "
                                  "Default: https://api.datadoghq.com.")
    api_key_env: str = Field(default="DD_API_KEY", pattern=_ENV,
                             description="Variable holding the API key. Default: DD_API_KEY.")
    app_key_env: str = Field(default="DD_APP_KEY", pattern=_ENV,
                             description="Variable holding the application key. Default: DD_APP_KEY.")

    def violations(self, cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
        if self.api_key_env == self.app_key_env:
            return [Violation(f"{prefix}metrics.appKeyEnv", "a different variable from apiKeyEnv",
                              self.app_key_env)]
        return []

    def keys(self, environ: Mapping[str, str]) -> tuple[str, str]:
        out: list[str] = []
        for field, name in (("apiKeyEnv", self.api_key_env), ("appKeyEnv", self.app_key_env)):
            value = environ.get(name)
            if not value:
                raise InputError(f"rollout.metrics.{field} must name a set environment variable, "
                                 f"but {name} is unset or empty")
            out.append(value)
        return out[0], out[1]

    def secret_values(self, environ: Mapping[str, str]) -> list[str]:
        return list(self.keys(environ))

    def endpoint(self, ctx: MetricsContext) -> MetricsEndpoint:
        return MetricsEndpoint(self.site, "datadog keys", None, "config rollout.metrics.site")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        api_key, app_key = self.keys(ctx.environ)
        return DatadogProvider(api_key, app_key, site=self.site)

    def plan_source(self, config: GantryConfig) -> dict[str, JSONValue]:
        return {"provider": self.kind, "url": self.site, "source": "config rollout.metrics.site",
                "auth": f"DD-API-KEY from ${self.api_key_env}, DD-APPLICATION-KEY from ${self.app_key_env}",
                "region": None}
