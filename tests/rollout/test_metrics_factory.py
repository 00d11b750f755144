"""The metrics registry: every backend by its kind with its own settings, unknown kinds refused with the valid list."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra import registry
from infra.config import ConfigError, parse
from infra.errors import InputError
from infra.rollout import factory
from infra.rollout.metrics import as_sample, percentile
from infra.rollout.metrics.cloudwatch import CloudWatchProvider
from infra.rollout.metrics.command import CommandProvider
from infra.rollout.metrics.http import HttpProvider
from infra.rollout.metrics.noop import NoopProvider
from infra.rollout.metrics.prometheus import PrometheusProvider
from infra.rollout.seams import MetricQuery, Sample
from infra.settings.rollout import RolloutSettings

BUILT_IN = {"cloudwatch", "command", "datadog", "http", "kubernetes", "noop", "prometheus", "sandbox"}


def settings(metrics: dict[str, object], **more: object) -> RolloutSettings:
    return RolloutSettings.model_validate({"metrics": metrics, **more})


def test_every_built_in_backend_is_registered_once_under_its_kind() -> None:
    assert set(registry.METRICS.names()) == BUILT_IN
    for model in registry.METRICS:
        assert registry.kind_of(model) in BUILT_IN and model.__module__.startswith("infra.")


def test_builds_each_backend_from_its_own_settings(tmp_path: Path) -> None:
    assert isinstance(factory.make_metrics(settings({"kind": "http", "url": "http://127.0.0.1:9"}), tmp_path),
                      HttpProvider)
    prom = factory.make_metrics(settings({"kind": "prometheus", "url": "http://127.0.0.1:9"}), tmp_path)
    assert isinstance(prom, PrometheusProvider) and prom.url == "http://127.0.0.1:9"
    cmd = factory.make_metrics(settings({"kind": "command", "timeout": "5s"}), tmp_path)
    assert isinstance(cmd, CommandProvider) and cmd.timeout == 5.0
    assert cmd.query(MetricQuery("x", f"{sys.executable} -c print(1.5)")) == Sample(1.5)
    cw = factory.make_metrics(settings({"kind": "cloudwatch", "region": "eu-west-1", "stat": "Maximum",
                                        "period": 30}), tmp_path)
    assert isinstance(cw, CloudWatchProvider) and (cw.stat, cw.period) == ("Maximum", 30)
    assert cw._client.meta.region_name == "eu-west-1"  # type: ignore[attr-defined]
    noop = factory.make_metrics(settings({"kind": "noop"}), tmp_path)
    assert isinstance(noop, NoopProvider) and noop.query(MetricQuery("x", "")).count == 0


def test_the_old_provider_key_still_selects_the_backend() -> None:
    assert settings({"provider": "cloudwatch", "region": "eu-west-1"}).metrics.kind == "cloudwatch"
    # `url: sandbox` was the sandbox's Prometheus: it is the sandbox backend now.
    assert settings({"provider": "prometheus", "url": "sandbox"}).metrics.kind == "sandbox"


def test_unknown_kind_lists_every_valid_one() -> None:
    with pytest.raises(InputError) as info:
        registry.METRICS.model("nope")
    msg = str(info.value)
    assert "'nope'" in msg and all(name in msg for name in BUILT_IN)


def test_a_backends_own_settings_are_config_errors_at_load_naming_the_key() -> None:
    values: dict[str, object] = {"cloud": "local", "environment": "dev", "tier": "dev",
                                 "rollout": {"metrics": {"kind": "cloudwatch", "stat": "Median"}}}
    with pytest.raises(ConfigError) as info:
        parse(values, "stacks/Pulumi.x.yaml")
    (line,) = info.value.problems
    assert line.startswith("gantry:rollout.metrics.stat must be one of 'Sum', ")
    assert "'Median' was given" in line
    values["rollout"] = {"metrics": {"kind": "http", "url": "http://x", "region": "eu-west-1"}}
    with pytest.raises(ConfigError) as info:
        parse(values, "stacks/Pulumi.x.yaml")
    # The valid keys are the http backend's own, not another backend's.
    assert info.value.problems == ["gantry:rollout.metrics.region is not a known key; valid keys: kind, url, probes"]


def test_a_backend_registered_later_is_accepted_without_rebuilding_anything(tmp_path: Path) -> None:
    from typing import Literal

    from infra.rollout.backends import MetricsContext, MetricsSource
    from infra.rollout.seams import MetricsProvider

    class Constant(MetricsSource):
        kind: Literal["constant-test"] = "constant-test"
        value: float

        def build(self, ctx: MetricsContext) -> MetricsProvider:
            return NoopProvider()

    registry.METRICS.register(Constant)
    try:
        assert settings({"kind": "constant-test", "value": 2}).metrics == Constant(value=2)
        with pytest.raises(ValueError, match="already registered"):
            registry.METRICS.register(type("Other", (Constant,), {"__module__": "x"}))
    finally:
        registry.METRICS.unregister("constant-test")
    with pytest.raises(Exception, match="kind must be one of"):
        settings({"kind": "constant-test", "value": 2})


def test_nan_and_inf_are_no_data() -> None:
    assert as_sample(float("nan")).count == 0
    assert as_sample(float("inf")).count == 0
    assert as_sample(2.0) == Sample(2.0, 1)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="at least one value"):
        percentile([], 50)


def test_the_noop_backend_needs_a_judging_hook_and_no_gates() -> None:
    values: dict[str, object] = {"cloud": "local", "environment": "dev", "tier": "dev",
                                 "services": {"web": {"namespace": "web", "image": "demo:v1"}},
                                 "rollout": {"target": "haproxy", "metrics": {"kind": "noop"}}}
    with pytest.raises(ConfigError) as info:
        parse(values, "stacks/Pulumi.x.yaml")
    assert info.value.problems == ["gantry:rollout.hooks must be a step or confirm-promotion hook when metrics.kind "
                                   "is noop (nothing else judges the rollout), but [] was given"]
    values["rollout"] = {"target": "haproxy", "metrics": {"kind": "noop"}, "judge": "threshold",
                         "hooks": [{"name": "smoke", "phase": "step", "argv": ["true"]}]}
    cfg = parse(values, "stacks/Pulumi.x.yaml")
    analysis = factory.make_analysis(cfg.rollout, project=Path("."), image="demo:v2", baseline_image="demo:v1")
    from infra.rollout.seams import AnalysisContext, RolloutId, Verdict

    result = analysis.analyse(AnalysisContext(RolloutId("r"), 0, 10, 0.0, 30.0, "demo:v2", "demo:v1"))
    assert result.verdict is Verdict.PASS and "hooks" in result.checks[0].detail
    # Without the hook-judged fallback, a backend with no traffic and no gates is refused.
    http = cfg.rollout.model_copy(update={"metrics": registry.METRICS.validate({"kind": "http", "url": "http://x"})})
    with pytest.raises(InputError, match=r"rollout\.gates must be non-empty when metrics\.kind is http"):
        factory.make_analysis(http, project=Path("."), image="demo:v2", baseline_image="demo:v1")
