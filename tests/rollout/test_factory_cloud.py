"""A cloud stack's rollout parts, built as `rollout start` builds them: the metrics endpoint and kubeconfig come
from the stack's outputs (fake Automation API), queries go to a local Prometheus API (SigV4-signed, the router's
template), and the restarts gate counts the canary's container restarts on a fake Kubernetes API."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fake_automation import FakeStack, FakeWorkspace, ProgramRun, services_program
from metric_servers import App, kube_pods_route, make_pod, serve

from components.spec import Strategy
from infra.config import GantryConfig, load_stack
from infra.errors import InputError
from infra.rollout import factory
from infra.rollout.metrics.cloudwatch import CloudWatchSettings
from infra.rollout.metrics.kubernetes import KubernetesSettings
from infra.rollout.metrics.templates import TemplatedTraffic
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import AnalysisContext, RolloutId, Verdict

REPO = Path(__file__).resolve().parents[2]


class PromApi:
    """Answers instant queries by substring: the canary's and the baseline's counts, errors and buckets."""

    def __init__(self, canary: tuple[int, int], baseline: tuple[int, int]) -> None:
        self.canary, self.baseline = canary, baseline
        self.queries: list[str] = []

    def __call__(self, handler: object) -> tuple[int, str]:
        query = parse_qs(urlparse(handler.path).query)["query"][0]  # type: ignore[attr-defined]
        self.queries.append(query)
        requests, errors = self.canary if "web-canary" in query else self.baseline
        if "sum by (le)" in query and "increase" in query:
            result = [{"metric": {"le": le}, "value": [0, str(requests * f)]}
                      for le, f in (("25", 0.5), ("50", 0.96), ("100", 1.0), ("+Inf", 1.0))]
        elif "histogram_quantile" in query:
            result = [{"metric": {}, "value": [0, "40"]}]
        elif "5.." in query:
            result = [{"metric": {}, "value": [0, str(errors)]}]
        else:
            result = [{"metric": {}, "value": [0, str(requests)]}]
        return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


VERSION = json.dumps({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "abc",
                      "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                      "compiler": "gc", "platform": "linux/amd64"})
PODS = [
    make_pod("web-canary-1", "web", {"app.kubernetes.io/name": "web", "gantry.dev/track": "canary"}, [4, 3]),
    make_pod("web-stable-1", "web", {"app.kubernetes.io/name": "web", "gantry.dev/track": "stable"}, [50]),
]


@pytest.fixture
def cluster() -> Iterator[tuple[App, PromApi]]:
    prom = PromApi(canary=(400, 1), baseline=(3600, 9))
    routes = {"/workspaces/ws-1/api/v1/query": prom, "/api/v1/namespaces/web/pods": kube_pods_route(PODS),
              "/version/": lambda _: (200, VERSION)}
    with serve(App(routes=routes)) as app:  # type: ignore[arg-type]
        yield app, prom


def prod() -> GantryConfig:
    return load_stack("prod", REPO / "stacks")


def target_for(cfg: GantryConfig, app: App, tmp_path: Path) -> PulumiStackTarget:
    services = {name: svc.model_dump(by_alias=True, mode="json", exclude_none=True)
                for name, svc in cfg.services.items()}
    stack = FakeStack("prod", config={"gantry:services": services}, program=services_program)
    kubeconfig = json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": app.url}}],
        "users": [{"name": "u", "user": {"token": "kube-token"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "u"}}]})
    stack.stack_outputs = {**services_program(ProgramRun("prod", stack.config, {}, {})), "kubeconfig": kubeconfig,
                           "metrics": {"url": f"{app.url}/workspaces/ws-1", "auth": "sigv4", "region": "us-east-1"}}
    ws = FakeWorkspace()
    ws.add(stack)
    return PulumiStackTarget("prod", "web", tmp_path, Strategy.CANARY, stack_factory=ws.factory,
                             checkpoint_dir=tmp_path / "cp")


def ctx() -> AnalysisContext:
    return AnalysisContext(RolloutId("r1"), 0, 10, step_started_at=0.0, now=60.0,
                           canary_version="1.5.0", baseline_version="1.4.0")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_endpoint_comes_from_the_stack_outputs_unless_config_sets_one(
        cluster: tuple[App, PromApi], tmp_path: Path) -> None:
    app, _ = cluster
    cfg = prod()
    target = target_for(cfg, app, tmp_path)
    endpoint = factory.metrics_endpoint(cfg.rollout_for("web"), cfg, target)
    assert (endpoint.url, endpoint.auth, endpoint.region) == (f"{app.url}/workspaces/ws-1", "sigv4", "us-east-1")
    assert "stack output" in endpoint.source
    explicit = cfg.rollout.model_copy(update={"metrics": cfg.rollout.metrics.model_copy(
        update={"url": "http://prometheus.monitoring:9090"})})
    mine = factory.metrics_endpoint(explicit, cfg, target)
    assert (mine.url, mine.auth, mine.source) == ("http://prometheus.monitoring:9090", "none",
                                                  "config rollout.metrics.url")


def test_a_restarting_canary_fails_on_restarts_with_signed_template_queries(
        cluster: tuple[App, PromApi], tmp_path: Path) -> None:
    app, prom = cluster
    cfg = prod()
    settings = cfg.rollout_for("web")
    target = target_for(cfg, app, tmp_path)
    gate = factory.restarts_gate(settings, project=tmp_path, stack="prod", service="web", svc=cfg.services["web"],
                                 outputs=target)
    assert gate is not None
    assert gate.query.expr == "app.kubernetes.io/name=web,gantry.dev/track=canary"
    kube = tmp_path / ".gantry" / "kube" / "prod.kubeconfig"
    assert stat.S_IMODE(kube.stat().st_mode) == 0o600
    analysis = factory.make_analysis(settings, project=tmp_path, image="ghcr.io/gantry-demo/web:1.5.0",
                                     baseline_image="ghcr.io/gantry-demo/web:1.4.0", service="web",
                                     svc=cfg.services["web"], endpoint=factory.metrics_endpoint(settings, cfg, target),
                                     extra_gates=[gate])
    assert isinstance(analysis.traffic, TemplatedTraffic)  # type: ignore[attr-defined]
    result = analysis.analyse(ctx())
    checks = {c.name: c for c in result.checks}
    assert checks["restarts"].verdict is Verdict.FAIL and checks["restarts"].value == 7.0, "4+3 canary restarts only"
    assert result.verdict is Verdict.FAIL
    # prod's web service is behind gateway-api, judged on Contour's Envoy series by default.
    assert any('envoy_cluster_name=~"web_web-canary_80(_.+)?"' in q for q in prom.queries), prom.queries
    signed = [r for r in app.requests if r[1].startswith("/workspaces/")]
    assert signed and all(r[3]["Authorization"].startswith("AWS4-HMAC-SHA256") for r in signed)


def test_a_healthy_canary_passes_with_no_restarts(cluster: tuple[App, PromApi], tmp_path: Path) -> None:
    app, _ = cluster
    PODS[0]["status"]["containerStatuses"][0]["restartCount"] = 0
    PODS[0]["status"]["containerStatuses"][1]["restartCount"] = 0
    try:
        cfg = prod()
        settings = cfg.rollout_for("web").model_copy(update={"judge": "threshold"})
        target = target_for(cfg, app, tmp_path)
        gate = factory.restarts_gate(settings, project=tmp_path, stack="prod", service="web",
                                     svc=cfg.services["web"], outputs=target)
        assert gate is not None
        analysis = factory.make_analysis(settings, project=tmp_path, image="i:2", baseline_image="i:1",
                                         service="web", svc=cfg.services["web"],
                                         endpoint=factory.metrics_endpoint(settings, cfg, target), extra_gates=[gate])
        result = analysis.analyse(ctx())
        assert result.verdict is Verdict.PASS, result.checks
    finally:
        PODS[0]["status"]["containerStatuses"][0]["restartCount"] = 4
        PODS[0]["status"]["containerStatuses"][1]["restartCount"] = 3


def test_no_endpoint_anywhere_is_an_input_error(tmp_path: Path) -> None:
    cfg = prod()
    endpoint = factory.MetricsEndpoint(None, "none", None, "none")
    with pytest.raises(InputError, match=r"rollout\.metrics\.url must be set, or exported"):
        factory.make_metrics(cfg.rollout_for("web"), tmp_path, endpoint)


def test_bluegreen_restarts_watch_the_new_color() -> None:
    from components.spec import Color

    assert factory.restarts_selector("api", Strategy.BLUEGREEN, Color.GREEN) == \
        "app.kubernetes.io/name=api,gantry.dev/color=green"


def test_kubernetes_provider_gets_the_kubeconfig_and_the_service_namespace(
        cluster: tuple[App, PromApi], tmp_path: Path) -> None:
    app, _ = cluster
    cfg = prod()
    settings = cfg.rollout_for("web").model_copy(update={"metrics": KubernetesSettings()})
    path = factory.kubeconfig_path(settings, tmp_path, "prod", target_for(cfg, app, tmp_path))
    provider = factory.make_metrics(settings, tmp_path, kubeconfig=path, namespace="web")
    assert provider.namespace == "web"  # type: ignore[attr-defined]
    assert provider.is_online()


def test_cloudwatch_uses_the_resolved_region(tmp_path: Path) -> None:
    cfg = prod()
    settings = cfg.rollout.model_copy(update={"metrics": CloudWatchSettings(region="eu-west-1")})
    endpoint = factory.metrics_endpoint(settings, cfg, None)
    provider = factory.make_metrics(settings, tmp_path, endpoint)
    assert provider._client.meta.region_name == "eu-west-1"  # type: ignore[attr-defined]
    default = cfg.rollout.model_copy(update={"metrics": CloudWatchSettings()})
    assert factory.metrics_endpoint(default, cfg, None).region == "us-east-1", "the stack's own region"
