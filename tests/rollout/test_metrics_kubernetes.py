"""Kubernetes provider against a fake API server (a local HTTP server speaking the pods list) via a kubeconfig."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from metric_servers import App, free_port, kube_pods_route, make_pod, serve, write_kubeconfig

from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.kubernetes import KubernetesProvider
from infra.rollout.seams import MetricQuery

VERSION = json.dumps({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "abc",
                      "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                      "compiler": "gc", "platform": "linux/amd64"})
PODS = [
    make_pod("web-canary-1", "web", {"app": "web", "track": "canary"}, [2, 1], init_restarts=[1]),
    make_pod("web-canary-2", "web", {"app": "web", "track": "canary"}, [3]),
    make_pod("web-stable-1", "web", {"app": "web", "track": "stable"}, [40]),
    make_pod("api-1", "api", {"app": "web", "track": "canary"}, [99]),
]


@pytest.fixture
def api() -> Iterator[App]:
    routes = {
        "/version/": lambda _: (200, VERSION),
        "/api/v1/namespaces/web/pods": kube_pods_route(PODS),
        "/api/v1/namespaces/api/pods": kube_pods_route(PODS),
    }
    with serve(App(routes=routes)) as running:
        yield running


def provider(api: App, tmp_path: Path) -> KubernetesProvider:
    return KubernetesProvider(kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", api.url)), namespace="web")


def test_restarts_sum_over_matching_pods_and_containers(api: App, tmp_path: Path) -> None:
    s = provider(api, tmp_path).query(MetricQuery("restarts", "app=web,track=canary"))
    assert (s.value, s.count) == (7.0, 4), "2+1+1 (init) in pod 1, 3 in pod 2; other track and namespace excluded"
    method, path, _, headers = api.requests[-1]
    assert method == "GET" and "labelSelector=app%3Dweb%2Ctrack%3Dcanary" in path
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer test-token"


def test_namespace_label_overrides_the_default(api: App, tmp_path: Path) -> None:
    s = provider(api, tmp_path).query(MetricQuery("restarts", "app=web", labels={"namespace": "api"}))
    assert s.value == 99.0


def test_no_matching_pods_is_no_data_not_zero(api: App, tmp_path: Path) -> None:
    assert provider(api, tmp_path).query(MetricQuery("restarts", "app=nothing")).count == 0


def test_online_and_offline(api: App, tmp_path: Path) -> None:
    assert provider(api, tmp_path).is_online() is True
    dead = write_kubeconfig(tmp_path / "dead", f"http://127.0.0.1:{free_port()}")
    p = KubernetesProvider(kubeconfig=str(dead), timeout=1)
    assert p.is_online() is False
    with pytest.raises(MetricsUnavailable, match="pods list in default failed"):
        p.query(MetricQuery("restarts", "app=web"))


def test_api_error_is_unavailable(api: App, tmp_path: Path) -> None:
    with pytest.raises(MetricsUnavailable, match="pods list in secret failed"):
        provider(api, tmp_path).query(MetricQuery("restarts", "app=web", labels={"namespace": "secret"}))


def test_bad_kubeconfig_and_empty_selector_are_input_errors(api: App, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="kubeconfig must name a reachable cluster context"):
        KubernetesProvider(kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(InputError, match="expr must be a label selector"):
        provider(api, tmp_path).query(MetricQuery("restarts", ""))
