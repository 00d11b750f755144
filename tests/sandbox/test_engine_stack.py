"""Stack local-engine without the engine: its config, the factory's wiring, and the program's routing resources.

The rollout target is ``pulumi`` while the metrics are the sandbox's Prometheus, judged by demo version
exactly as on the ``local`` stack; the program (rendered under Pulumi mocks) declares one server per slot
that runs a version and one weights resource that waits for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_helpers import REPO

from infra.config import load_stack
from infra.render import render_callable
from infra.rollout import factory
from infra.rollout.metrics.prometheus import PrometheusProvider
from infra.rollout.seams import Track
from infra.sandbox.state import SandboxState, sandbox_dir, save

SERVER = "pulumi-python:dynamic/gantry:SandboxServer"
WEIGHTS = "pulumi-python:dynamic/gantry:SandboxWeights"


def test_the_stack_targets_pulumi_and_judges_the_sandbox_prometheus_by_version(tmp_path: Path) -> None:
    cfg = load_stack("local-engine", REPO / "stacks")
    settings = cfg.rollout_for("web")
    # `metrics: {provider: prometheus, url: sandbox}` is the sandbox metrics backend (the running sandbox's).
    assert (settings.target.kind, settings.metrics.kind, settings.metrics.local) == ("pulumi", "sandbox", True)
    directory = sandbox_dir(tmp_path)
    directory.mkdir(parents=True)
    save(directory, SandboxState(directory=str(directory), stack="local-engine", haproxy_pid=1,
                                 haproxy_socket=str(directory / "haproxy.sock"), haproxy_stats_port=1,
                                 prometheus_pid=1, prometheus_port=45678))
    provider = factory.make_metrics(settings, tmp_path)
    assert isinstance(provider, PrometheusProvider) and provider.url == "http://127.0.0.1:45678"
    analysis = factory.make_analysis(settings, project=tmp_path, image="demo:v3", baseline_image="demo:v1",
                                     provider=provider, service="web")
    traffic = analysis.traffic  # type: ignore[attr-defined]
    assert traffic.versions == {Track.CANARY: "v3", Track.BASELINE: "v1"}
    assert traffic.extra_selector == 'service="web"'


def test_without_a_running_sandbox_the_metrics_url_is_a_one_line_input_error(tmp_path: Path) -> None:
    from infra.errors import InputError

    settings = load_stack("local-engine", REPO / "stacks").rollout_for("web")
    with pytest.raises(InputError, match="the sandbox is not up; start it with: gantry sandbox up"):
        factory.make_metrics(settings, tmp_path)


def _render(services: dict[str, object]) -> dict[str, dict[str, object]]:
    def program() -> None:
        import pulumi

        from infra.config import load_from_engine
        from infra.platform import build_platform

        for key, value in build_platform(load_from_engine()).items():
            pulumi.export(key, value)

    cfg = load_stack("local-engine", REPO / "stacks")
    config = {"gantry:cloud": "local", "gantry:environment": "local-engine", "gantry:tier": "dev",
              "gantry:services": services, "gantry:rollout": cfg.rollout.model_dump(by_alias=True),
              "gantry:sandbox": cfg.sandbox.model_dump(by_alias=True)}
    result = render_callable(program, project="gantry", stack="local-engine", config=config)
    return {r.name: {"type": r.type, "inputs": r.inputs, "dependencies": r.dependencies, "urn": r.urn}
            for r in result.resources}


def test_program_routes_a_canary_at_its_weight_with_weights_after_the_servers() -> None:
    graph = _render({"web": {"namespace": "web", "image": "demo:v1", "canaryImage": "demo:v3",
                             "canaryWeight": 10}})
    assert graph["web-stable"]["type"] == SERVER and graph["web-canary"]["type"] == SERVER
    assert graph["web-canary"]["inputs"]["image"] == "demo:v3"  # type: ignore[index]
    # v3's fault profile from gantry:sandbox.faults travels with the server that runs it.
    assert graph["web-canary"]["inputs"]["fault"]["errorRate"] == 0.2  # type: ignore[index]
    assert graph["web-stable"]["inputs"]["fault"]["errorRate"] == 0  # type: ignore[index]
    weights = graph["web-weights"]
    assert weights["type"] == WEIGHTS
    assert weights["inputs"]["weights"] == {"stable": 90, "canary": 10}  # type: ignore[index]
    assert weights["inputs"]["servers"] == ["canary", "stable"]  # type: ignore[index]
    assert set(weights["dependencies"]) >= {graph["web-stable"]["urn"], graph["web-canary"]["urn"]}  # type: ignore[call-overload]


def test_program_has_no_canary_server_once_promoted_and_no_routing_for_haproxy_targets() -> None:
    graph = _render({"web": {"namespace": "web", "image": "demo:v3"}})
    assert "web-canary" not in graph and graph["web-weights"]["inputs"]["servers"] == ["stable"]  # type: ignore[index]
    # A service the sandbox shifts itself (rollout target haproxy) gets no routing resources.
    graph = _render({"web": {"namespace": "web", "image": "demo:v1", "rollout": {"target": "haproxy"}}})
    assert not [n for n, r in graph.items() if str(r["type"]).startswith("pulumi-python:dynamic")]
