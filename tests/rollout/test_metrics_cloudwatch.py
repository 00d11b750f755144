"""CloudWatch provider against a real moto server on 127.0.0.1 (GetMetricData and alarm state)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import boto3  # type: ignore[import-untyped]  # the library ships no type information
import pytest
from metric_servers import free_port
from moto.server import ThreadedMotoServer

from infra.errors import InputError
from infra.rollout.metrics.cloudwatch import CloudWatchProvider
from infra.rollout.seams import MetricQuery, Sample


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def seeded(endpoint: str) -> str:
    cw = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=endpoint,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    now = dt.datetime.now(dt.UTC)
    for i, value in enumerate((3.0, 5.0, 4.0)):
        cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
            "MetricName": "HTTPCode_Target_5XX_Count", "Value": value, "Unit": "Count",
            "Timestamp": now - dt.timedelta(minutes=i + 1),
            "Dimensions": [{"Name": "TargetGroup", "Value": "tg-canary"}]}])
    for name, state in (("canary-5xx", "ALARM"), ("canary-latency", "OK"), ("canary-new", "INSUFFICIENT_DATA")):
        cw.put_metric_alarm(AlarmName=name, MetricName="x", Namespace="Gantry", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return endpoint


def provider(endpoint: str, **kw: object) -> CloudWatchProvider:
    return CloudWatchProvider(region="us-east-1", endpoint_url=endpoint, **kw)  # type: ignore[arg-type]


def test_sum_over_the_window(seeded: str) -> None:
    q = MetricQuery("5xx", "AWS/ApplicationELB/HTTPCode_Target_5XX_Count", window_seconds=600,
                    labels={"TargetGroup": "tg-canary"})
    s = provider(seeded).query(q)
    assert isinstance(s, Sample)
    assert s.value == 12.0 and s.count == 3


def test_maximum_statistic(seeded: str) -> None:
    q = MetricQuery("5xx", "AWS/ApplicationELB/HTTPCode_Target_5XX_Count", window_seconds=600,
                    labels={"TargetGroup": "tg-canary"})
    assert provider(seeded, stat="Maximum").query(q).value == 5.0


def test_other_dimension_has_no_data(seeded: str) -> None:
    q = MetricQuery("5xx", "AWS/ApplicationELB/HTTPCode_Target_5XX_Count", window_seconds=600,
                    labels={"TargetGroup": "tg-other"})
    s = provider(seeded).query(q)
    assert s.count == 0 and math.isnan(s.value)


@pytest.mark.parametrize(("alarm", "value", "count"), [("canary-5xx", 1.0, 1), ("canary-latency", 0.0, 1)])
def test_alarm_state(seeded: str, alarm: str, value: float, count: int) -> None:
    s = provider(seeded).query(MetricQuery("alarm", f"alarm:{alarm}"))
    assert (s.value, s.count) == (value, count)


def test_insufficient_data_alarm_is_no_data(seeded: str) -> None:
    assert provider(seeded).query(MetricQuery("alarm", "alarm:canary-new")).count == 0


def test_unknown_alarm_is_unavailable(seeded: str) -> None:
    from infra.rollout.errors import MetricsUnavailable

    with pytest.raises(MetricsUnavailable, match="'nope' does not exist"):
        provider(seeded).query(MetricQuery("alarm", "alarm:nope"))


def test_online_and_offline(seeded: str) -> None:
    assert provider(seeded).is_online() is True
    assert provider(f"http://127.0.0.1:{free_port()}", timeout=1).is_online() is False


def test_bad_expr_and_stat_name_the_field(seeded: str) -> None:
    with pytest.raises(InputError, match="Namespace/MetricName or alarm:<name>"):
        provider(seeded).query(MetricQuery("x", "JustAName"))
    with pytest.raises(InputError, match="stat must be one of Sum"):
        provider(seeded, stat="Median")
