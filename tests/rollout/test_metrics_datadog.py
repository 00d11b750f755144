"""The Datadog metrics backend against a local stand-in for Datadog's v1 query API on 127.0.0.1.

The stand-in checks what Datadog checks (both key headers, the query and its time range) and answers in
the v1 ``/api/v1/query`` shape; the keys never reach a message, and a stack's settings are checked at load.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from metric_servers import App, free_port, serve

from infra.config import ConfigError, parse
from infra.errors import InputError
from infra.rollout import factory
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.datadog import DatadogProvider, DatadogSettings
from infra.rollout.seams import MetricQuery, Sample
from infra.settings.rollout import RolloutSettings

API_KEY = "dd-api-0123456789abcdef"
APP_KEY = "dd-app-fedcba9876543210"
NOW = 1_700_000_000.0


def _authorised(req: BaseHTTPRequestHandler) -> bool:
    return req.headers.get("DD-API-KEY") == API_KEY and req.headers.get("DD-APPLICATION-KEY") == APP_KEY


def _query(req: BaseHTTPRequestHandler) -> tuple[int, str]:
    if not _authorised(req):
        # Datadog's 403 body; a careless client would echo what it sent.
        return 403, json.dumps({"errors": [f"Forbidden: key {req.headers.get('DD-API-KEY')} is not valid"]})
    params = {k: v[0] for k, v in parse_qs(urlparse(req.path).query).items()}
    start, end = int(params["from"]), int(params["to"])
    if "errors" in params["query"]:
        series = [{"metric": "trace.http.request.errors", "scope": "service:web,version:v2",
                   "pointlist": [[start * 1000.0, 1.0], [(start + 30) * 1000.0, None], [end * 1000.0, 3.0]]},
                  {"metric": "trace.http.request.errors", "scope": "service:web,version:v2b",
                   "pointlist": [[end * 1000.0, 2.0]]}]
    elif "nodata" in params["query"]:
        series = []
    else:
        return 400, json.dumps({"status": "error", "error": "Rule 'qwerty' is invalid", "series": []})
    return 200, json.dumps({"status": "ok", "res_type": "time_series", "from_date": start * 1000,
                            "to_date": end * 1000, "query": params["query"], "series": series})


def _validate(req: BaseHTTPRequestHandler) -> tuple[int, str]:
    ok = req.headers.get("DD-API-KEY") == API_KEY
    return (200, '{"valid": true}') if ok else (403, '{"errors": ["Forbidden"]}')


@pytest.fixture
def datadog() -> Iterator[App]:
    with serve(App(routes={"/api/v1/query": _query, "/api/v1/validate": _validate})) as app:
        yield app


def provider(app: App, api_key: str = API_KEY) -> DatadogProvider:
    return DatadogProvider(api_key, APP_KEY, site=app.url, now=lambda: NOW)


def test_query_sends_both_keys_and_the_window_and_sums_each_series_last_point(datadog: App) -> None:
    q = MetricQuery("errors", "sum:trace.http.request.errors{service:$service}.as_count()", window_seconds=90,
                    labels={"service": "web"})
    sample = provider(datadog).query(q)
    assert sample == Sample(value=5.0, count=2, observations=(1.0, 3.0, 2.0))  # nulls are skipped
    method, path, _, headers = datadog.requests[-1]
    params = {k: v[0] for k, v in parse_qs(urlparse(path).query).items()}
    assert method == "GET" and params == {"from": str(int(NOW) - 90), "to": str(int(NOW)),
                                          "query": "sum:trace.http.request.errors{service:web}.as_count()"}
    assert headers["DD-API-KEY"] == API_KEY and headers["DD-APPLICATION-KEY"] == APP_KEY


def test_no_series_is_no_data_which_fails_safe(datadog: App) -> None:
    sample = provider(datadog).query(MetricQuery("x", "avg:nodata{*}"))
    assert sample.count == 0 and math.isnan(sample.value)


def test_rejected_queries_and_bad_keys_are_unavailable_with_the_keys_masked(datadog: App) -> None:
    with pytest.raises(MetricsUnavailable, match="Rule 'qwerty' is invalid"):
        provider(datadog).query(MetricQuery("x", "qwerty"))
    wrong = "dd-api-wrong-00000000"
    with pytest.raises(MetricsUnavailable) as info:
        provider(datadog, api_key=wrong).query(MetricQuery("x", "sum:errors{*}"))
    assert "HTTP 403" in str(info.value) and wrong not in str(info.value) and APP_KEY not in str(info.value)


def test_an_unreachable_site_is_unavailable_and_offline() -> None:
    dead = DatadogProvider(API_KEY, APP_KEY, site=f"http://127.0.0.1:{free_port()}", timeout=2.0)
    with pytest.raises(MetricsUnavailable, match="unreachable") as info:
        dead.query(MetricQuery("x", "sum:errors{*}"))
    assert API_KEY not in str(info.value)
    assert dead.is_online() is False


def test_online_means_the_api_key_validates(datadog: App) -> None:
    assert provider(datadog).is_online() is True
    assert provider(datadog, api_key="dd-api-nope-1111").is_online() is False


def _values(rollout: dict[str, object]) -> dict[str, object]:
    gates = [{"name": "errors", "expr": "sum:errors{*}", "max": 1}]
    return {"cloud": "local", "environment": "dev", "tier": "dev",
            "services": {"web": {"namespace": "web", "image": "demo:v1"}},
            "rollout": {"target": "haproxy", "gates": gates, **rollout}}


def test_stack_settings_are_checked_at_load() -> None:
    with pytest.raises(ConfigError) as info:
        parse(_values({"metrics": {"kind": "datadog", "apiKeyEnv": "dd_key"}}), "stacks/Pulumi.x.yaml")
    assert info.value.problems == ["gantry:rollout.metrics.apiKeyEnv must be a string matching "
                                   "^[A-Z_][A-Z0-9_]*$, but 'dd_key' was given"]
    with pytest.raises(ConfigError) as info:
        parse(_values({"metrics": {"kind": "datadog", "site": "api.datadoghq.eu"}}), "stacks/Pulumi.x.yaml")
    assert info.value.problems[0].startswith("gantry:rollout.metrics.site must be a string matching")
    with pytest.raises(ConfigError) as info:
        parse(_values({"metrics": {"kind": "datadog", "appKeyEnv": "DD_API_KEY"}}), "stacks/Pulumi.x.yaml")
    assert "gantry:rollout.metrics.appKeyEnv must be a different variable from apiKeyEnv" in info.value.problems[0]


def test_the_factory_builds_it_from_the_environment_and_treats_the_keys_as_secrets(
        datadog: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    settings = RolloutSettings.model_validate({
        "judge": "threshold",
        "metrics": {"kind": "datadog", "site": datadog.url, "apiKeyEnv": "TEAM_DD_API", "appKeyEnv": "TEAM_DD_APP"},
        "gates": [{"name": "errors", "expr": "sum:trace.http.request.errors{service:web}.as_count()", "max": 4}]})
    assert isinstance(settings.metrics, DatadogSettings)
    monkeypatch.delenv("TEAM_DD_API", raising=False)
    with pytest.raises(InputError, match=r"rollout\.metrics\.apiKeyEnv must name a set environment variable, "
                                         r"but TEAM_DD_API is unset"):
        factory.known_secrets(settings)
    monkeypatch.setenv("TEAM_DD_API", API_KEY)
    monkeypatch.setenv("TEAM_DD_APP", APP_KEY)
    assert set(factory.known_secrets(settings)) >= {API_KEY, APP_KEY}
    built = factory.make_metrics(settings, tmp_path)
    assert isinstance(built, DatadogProvider) and built.is_online()
    with caplog.at_level(logging.DEBUG):
        analysis = factory.make_analysis(settings, project=tmp_path, image="web:2", baseline_image="web:1",
                                         provider=built)
    assert datadog.requests and not any(API_KEY in r.getMessage() for r in caplog.records)
    assert analysis is not None
