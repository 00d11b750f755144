"""make_provider: every backend by name, and unknown names refused with the valid list."""

from __future__ import annotations

import sys

import pytest

from infra.errors import InputError
from infra.rollout.metrics import PROVIDERS, as_sample, make_provider, percentile
from infra.rollout.metrics.command import CommandProvider
from infra.rollout.metrics.http import HttpProvider
from infra.rollout.metrics.prometheus import PrometheusProvider
from infra.rollout.seams import MetricQuery, Sample


def test_builds_by_name_with_settings() -> None:
    assert isinstance(make_provider("http", probes=3), HttpProvider)
    assert isinstance(make_provider("prometheus", url="http://127.0.0.1:9"), PrometheusProvider)
    cmd = make_provider("command", argv=[sys.executable, "-c", "print(1.5)"])
    assert isinstance(cmd, CommandProvider) and cmd.query(MetricQuery("x", "")) == Sample(1.5)
    no_options: dict[str, object] = {}
    assert {make_provider(n, **no_options).name for n in ("http", "command")} == {"http", "command"}


def test_unknown_name_lists_every_valid_one() -> None:
    with pytest.raises(InputError) as info:
        make_provider("datadog")
    msg = str(info.value)
    assert "'datadog'" in msg and all(name in msg for name in PROVIDERS)


def test_unknown_setting_is_an_input_error_not_a_traceback() -> None:
    with pytest.raises(InputError, match="metrics settings for http"):
        make_provider("http", bogus=1)


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
