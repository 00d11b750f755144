"""Command provider: real argv processes, never a shell, with a timeout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.command import CommandProvider
from infra.rollout.seams import MetricQuery, Sample

PY = sys.executable


def q(expr: str) -> MetricQuery:
    return MetricQuery("custom", expr)


def test_last_line_number_is_the_value() -> None:
    s = CommandProvider().query(q(f"{PY} -c \"print('warming up'); print(0.042)\""))
    assert s == Sample(0.042, 1)


def test_several_numbers_are_observations() -> None:
    s = CommandProvider().query(q(f"{PY} -c \"print('10 20 30')\""))
    assert (s.value, s.count, s.observations) == (20.0, 3, (10.0, 20.0, 30.0))


def test_fixed_argv_is_used_when_expr_is_empty() -> None:
    assert CommandProvider(argv=[PY, "-c", "print(7)"]).query(q("")).value == 7.0


def test_no_shell_metacharacters_are_interpreted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    s = CommandProvider().query(q(f"{PY} -c \"import sys; print(len(sys.argv))\" ; touch {marker}"))
    assert s.value == 4.0, "';', 'touch' and the path arrive as plain arguments"
    assert not marker.exists()


def test_non_zero_exit_is_unavailable_with_stderr() -> None:
    with pytest.raises(MetricsUnavailable, match="exit status 3: no data"):
        CommandProvider().query(q(f"{PY} -c \"import sys; sys.stderr.write('no data'); sys.exit(3)\""))


def test_timeout_is_unavailable() -> None:
    with pytest.raises(MetricsUnavailable, match=r"timed out after 0\.3s"):
        CommandProvider(timeout=0.3).query(q(f"{PY} -c \"import time; time.sleep(5)\""))


def test_non_number_and_missing_binary_are_unavailable() -> None:
    with pytest.raises(MetricsUnavailable, match="last line must be a number"):
        CommandProvider().query(q(f"{PY} -c \"print('high')\""))
    with pytest.raises(MetricsUnavailable, match="cannot run"):
        CommandProvider().query(q("/nonexistent/metric-script"))


def test_nan_is_no_data() -> None:
    assert CommandProvider().query(q(f"{PY} -c \"print('nan')\"")).count == 0


def test_empty_command_and_bad_timeout_are_input_errors() -> None:
    with pytest.raises(InputError, match="expr must be a command line"):
        CommandProvider().query(q(""))
    with pytest.raises(InputError, match="timeout must be positive, but 0"):
        CommandProvider(timeout=0)


def test_online_when_the_fixed_program_exists() -> None:
    assert CommandProvider(argv=[PY, "-c", "print(1)"]).is_online() is True
    assert CommandProvider(argv=["python3"]).is_online() is True
    assert CommandProvider(argv=["/nonexistent/x"]).is_online() is False
    assert CommandProvider(argv=["no-such-program-anywhere"]).is_online() is False
