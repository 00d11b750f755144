"""The load generator: loopback only, bounded in requests and time, records who answered."""

from __future__ import annotations

import pytest

from infra.errors import InputError
from infra.sandbox.loadgen import LoadGenerator
from infra.sandbox.state import SandboxState


@pytest.mark.parametrize("url", ["http://10.0.0.1:80/", "http://example.com:80/", "https://127.0.0.1:8443/",
                                 "http://127.0.0.1/"])
def test_refuses_anything_but_loopback_http_with_a_port(url: str) -> None:
    with pytest.raises(InputError, match=r"127\.0\.0\.1"):
        LoadGenerator(url)


def test_refuses_unbounded_or_silly_rates() -> None:
    with pytest.raises(InputError, match="rate"):
        LoadGenerator("http://127.0.0.1:9/", rate_rps=0)
    with pytest.raises(InputError, match="bounds"):
        LoadGenerator("http://127.0.0.1:9/", max_requests=0)


def test_connection_failures_are_recorded_as_failed_not_dropped() -> None:
    load = LoadGenerator("http://127.0.0.1:9/", rate_rps=100, max_requests=20, max_seconds=5).start()
    load.wait(timeout=5)
    recs = load.records()
    assert len(recs) == 20
    assert all(r.failed and r.status == 0 for r in recs)


@pytest.mark.sandbox
def test_stops_at_the_request_bound_and_sees_the_serving_version(sandbox: SandboxState) -> None:
    load = LoadGenerator(sandbox.frontend_url("web"), rate_rps=200, max_requests=150, max_seconds=30).start()
    load.wait(timeout=10)
    stats = load.window(0)
    assert stats.requests == 150
    assert stats.by_version == {"v1": 150}
    assert stats.errors == 0
    # Open loop at 200 rps: the 150th request was scheduled ~0.75 s in, not later.
    assert max(r.t for r in load.records()) < 1.5


@pytest.mark.sandbox
def test_stops_at_the_time_bound(sandbox: SandboxState) -> None:
    load = LoadGenerator(sandbox.frontend_url("web"), rate_rps=50, max_requests=10_000, max_seconds=1.0).start()
    load.wait(timeout=5)
    assert 45 <= len(load.records()) <= 51
