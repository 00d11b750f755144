"""HTTP probe provider against a real threaded HTTP app on 127.0.0.1."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from metric_servers import App, free_port, serve

from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.http import HttpProvider
from infra.rollout.seams import MetricQuery, Sample


class ServerTime:
    """A clock that only the test app's handlers move: each request takes exactly the time its route declares,
    however loaded the machine is (the provider reads it before and after each request, as its timer)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def spend(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


SERVER_TIME = ServerTime()


@pytest.fixture
def app() -> Iterator[App]:
    counter = itertools.count()

    def flaky(_: BaseHTTPRequestHandler) -> tuple[int, str]:
        return (500, "boom") if next(counter) % 4 == 0 else (200, "ok")

    def ok(_: BaseHTTPRequestHandler) -> tuple[int, str]:
        SERVER_TIME.spend(0.002)
        return 200, "ok"

    def slow(_: BaseHTTPRequestHandler) -> tuple[int, str]:
        SERVER_TIME.spend(0.03)
        return 200, "ok"

    routes = {"/ok": ok, "/flaky": flaky, "/slow": slow, "/down": lambda _: (503, "down"),
              "/notfound-is-ok": lambda _: (404, "nope")}
    with serve(App(routes=routes)) as running:
        yield running


def test_success_rate_counts_5xx_as_failures(app: App) -> None:
    p = HttpProvider(probes=20)
    s = p.query(MetricQuery("success_rate", f"{app.url}/flaky"))
    assert isinstance(s, Sample)
    assert (s.value, s.count) == (0.75, 20)
    assert len(s.observations) == 20
    assert sum(1 for r in app.requests if r[1] == "/flaky") == 20


def test_4xx_is_not_a_server_failure(app: App) -> None:
    s = HttpProvider(probes=5).query(MetricQuery("error_rate", f"{app.url}/notfound-is-ok"))
    assert isinstance(s, Sample) and s.value == 0.0


def test_latency_percentiles_reflect_a_slow_endpoint(app: App) -> None:
    # The timer is injected: a stall of the loaded machine between two reads cannot make /ok look slow.
    p = HttpProvider(probes=10, timer=SERVER_TIME)
    fast = p.query(MetricQuery("p95", f"{app.url}/ok"))
    slow = p.query(MetricQuery("p50", f"{app.url}/slow"))
    assert isinstance(fast, Sample) and isinstance(slow, Sample)
    assert fast.observations == pytest.approx((2.0,) * 10) and fast.value == pytest.approx(2.0)
    assert slow.observations == pytest.approx((30.0,) * 10) and slow.value == pytest.approx(30.0)


def test_all_probes_failing_makes_latency_unavailable(app: App) -> None:
    p = HttpProvider(probes=3)
    with pytest.raises(MetricsUnavailable, match="all 3 probes failed"):
        p.query(MetricQuery("p95", f"{app.url}/down"))
    rate = p.query(MetricQuery("success_rate", f"{app.url}/down"))
    assert isinstance(rate, Sample) and (rate.value, rate.count) == (0.0, 3)


def test_unreachable_url_is_all_errors_and_offline() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    p = HttpProvider(url=url, probes=3, timeout=1)
    s = p.query(MetricQuery("success_rate", url))
    assert isinstance(s, Sample) and s.value == 0.0
    assert p.is_online() is False


def test_online_when_the_url_answers(app: App) -> None:
    assert HttpProvider(url=f"{app.url}/ok").is_online() is True


@pytest.mark.parametrize("bad", ["", "ftp://x", "localhost:80"])
def test_bad_url_names_the_field(bad: str) -> None:
    with pytest.raises(InputError, match="expr must be an http"):
        HttpProvider(probes=1).query(MetricQuery("p95", bad))


def test_unknown_value_name_lists_the_valid_ones(app: App) -> None:
    with pytest.raises(InputError, match="success_rate, error_rate, p50"):
        HttpProvider(probes=1).query(MetricQuery("p42", f"{app.url}/ok"))
