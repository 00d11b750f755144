"""CloudWatch provider: a metric statistic through GetMetricData, or an alarm's state, via boto3.

Registers the ``cloudwatch`` metrics backend (``CloudWatchSettings``: region, statistic, period);
``endpoint_url`` points it at moto_server in tests. boto3 loads only when a provider is built.
CodeDeploy-style gates: an alarm in ALARM state is value 1 (fail with limit 0), OK is 0.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal, Protocol, cast

from pydantic import Field

from components.spec import Cloud
from components.validation import Violation
from infra import registry
from infra.config import GantryConfig
from infra.errors import InputError
from infra.rollout.backends import MetricsContext, MetricsEndpoint, MetricsSource
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.seams import MetricQuery, MetricsProvider, Sample
from infra.settings.rollout import RolloutSettings

ALARM_PREFIX = "alarm:"
STATS = ("Sum", "Average", "Maximum", "Minimum", "SampleCount", "p50", "p90", "p95", "p99")


class _CloudWatchClient(Protocol):
    def get_metric_data(self, **kwargs: object) -> dict[str, object]: ...

    def describe_alarms(self, **kwargs: object) -> dict[str, object]: ...


def _parse(expr: str) -> tuple[str, str]:
    """``AWS/ApplicationELB/HTTPCode_Target_5XX_Count`` -> (namespace, metric); namespaces contain '/'."""
    namespace, sep, metric = expr.rpartition("/")
    if not sep or not namespace or not metric:
        raise InputError(f"cloudwatch metric expr must be Namespace/MetricName or alarm:<name>, but {expr!r} was given")
    return namespace, metric


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    return (BotoCoreError, ClientError)


class CloudWatchProvider:
    """``query.expr`` is ``Namespace/MetricName`` (labels are dimensions) or ``alarm:<AlarmName>``."""

    name = "cloudwatch"

    def __init__(self, region: str = "us-east-1", stat: str = "Sum", period: int = 60,
                 endpoint_url: str | None = None, client: _CloudWatchClient | None = None,
                 timeout: float = 10.0) -> None:
        if stat not in STATS:
            raise InputError(f"stat must be one of {', '.join(STATS)}, but {stat!r} was given")
        if period < 1:
            raise InputError(f"period must be at least 1 second, but {period} was given")
        self.stat = stat
        self.period = period
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        cfg = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2})
        self._client: _CloudWatchClient = client or cast(
            _CloudWatchClient, boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint_url, config=cfg))

    def alarm_state(self, alarm: str) -> str:
        try:
            found = self._client.describe_alarms(AlarmNames=[alarm])
        except _errors() as exc:
            raise MetricsUnavailable(f"cloudwatch describe_alarms failed: {exc}") from exc
        alarms = cast(list[dict[str, object]], found.get("MetricAlarms", []))
        if not alarms:
            raise MetricsUnavailable(f"cloudwatch alarm {alarm!r} does not exist")
        return str(alarms[0]["StateValue"])

    def query(self, query: MetricQuery) -> Sample:
        if query.expr.startswith(ALARM_PREFIX):
            state = self.alarm_state(query.expr[len(ALARM_PREFIX):])
            if state == "INSUFFICIENT_DATA":
                return Sample(value=math.nan, count=0)
            return Sample(value=1.0 if state == "ALARM" else 0.0, count=1)
        namespace, metric = _parse(query.expr)
        end = dt.datetime.now(dt.UTC)
        start = end - dt.timedelta(seconds=max(query.window_seconds, self.period))
        stat = {"Id": "m0", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(query.labels.items())]},
            "Period": self.period, "Stat": self.stat}}
        try:
            data = self._client.get_metric_data(MetricDataQueries=[stat], StartTime=start, EndTime=end)
        except _errors() as exc:
            raise MetricsUnavailable(f"cloudwatch get_metric_data failed: {exc}") from exc
        results = cast(list[dict[str, object]], data.get("MetricDataResults", []))
        values = tuple(float(v) for r in results for v in cast(list[float], r.get("Values", [])))
        if not values:
            return Sample(value=math.nan, count=0)
        if self.stat in ("Sum", "SampleCount"):
            value = sum(values)
        elif self.stat == "Maximum":
            value = max(values)
        elif self.stat == "Minimum":
            value = min(values)
        else:
            value = sum(values) / len(values)
        return Sample(value=value, count=len(values), observations=values)

    def is_online(self) -> bool:
        try:
            self._client.describe_alarms(MaxRecords=1)
        except _errors():
            return False
        return True


@registry.METRICS.register
class CloudWatchSettings(MetricsSource):
    """``rollout.metrics`` for CloudWatch: each gate's ``expr`` is ``Namespace/MetricName`` or ``alarm:<name>``."""

    kind: Literal["cloudwatch"] = "cloudwatch"
    region: str | None = Field(
        default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
        description="AWS region of the metrics and alarms. Default: the stack's gantry:region (aws stacks).")
    stat: Literal["Sum", "Average", "Maximum", "Minimum", "SampleCount", "p50", "p90", "p95", "p99"] = Field(
        default="Sum", description="Statistic of a metric gate. Default: Sum.")
    period: int = Field(default=60, ge=1, description="Seconds per data point. Default: 60.")

    def violations(self, cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
        if self.region is None and not (cfg.cloud is Cloud.AWS and cfg.region):
            return [Violation(f"{prefix}metrics.region", f"set (an AWS region) for cloudwatch metrics on a "
                              f"{cfg.cloud.value} stack", None)]
        return []

    def endpoint(self, ctx: MetricsContext) -> MetricsEndpoint:
        cfg = ctx.config
        region = self.region or (cfg.region if cfg is not None and cfg.cloud is Cloud.AWS else None)
        return MetricsEndpoint(None, "none", region, "config rollout.metrics.region" if self.region else "stack")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        region = (ctx.endpoint.region if ctx.endpoint is not None else None) or self.region
        if region is None:
            return CloudWatchProvider(stat=self.stat, period=self.period)
        return CloudWatchProvider(region=region, stat=self.stat, period=self.period)
