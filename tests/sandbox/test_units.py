"""Pure parts of the sandbox: configs it generates, image/version parsing, settings, the demo app's fault dice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sandbox_helpers import make_project

from components.spec import Strategy
from infra.config import ConfigError, load_stack
from infra.sandbox import haproxy, prometheus
from infra.sandbox.demoapp import DemoApp, FaultProfile
from infra.sandbox.procs import MissingBinary, SandboxError, find_binary
from infra.sandbox.settings import FaultSpec
from infra.sandbox.state import resolve_prometheus_url, version_of


@pytest.mark.parametrize(("image", "version"), [("demo:v1", "v1"), ("demo:v3", "v3"),
                                                 ("ghcr.io/acme/demo:2.0.1", "2.0.1")])
def test_version_is_the_demo_image_tag(image: str, version: str) -> None:
    assert version_of(image) == version


@pytest.mark.parametrize("image", ["nginx:1.25", "demo", "demo:", "web/app:v1", "demo:v1;rm"])
def test_other_images_are_refused_with_the_expected_form(image: str) -> None:
    with pytest.raises(SandboxError, match=r"image must be demo:<version>"):
        version_of(image)


def test_haproxy_config_binds_loopback_and_has_an_admin_socket_and_metrics_ports(tmp_path: Path) -> None:
    fe = haproxy.FrontendSpec("web", 8001, [haproxy.ServerSlot("stable", 9001, 100),
                                            haproxy.ServerSlot("canary", None, 0)],
                              {"stable": 8101, "canary": 8102})
    cfg = haproxy.render_config(tmp_path / "a.sock", 8200, [fe])
    binds = [ln.split()[1] for ln in cfg.splitlines() if ln.strip().startswith("bind ")]
    assert sorted(binds) == ["127.0.0.1:8001", "127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8200"]
    assert f"stats socket {tmp_path / 'a.sock'} mode 600 level admin" in cfg
    assert "server stable 127.0.0.1:9001 weight 100" in cfg
    # An empty slot points nowhere useful and starts in maintenance, so it can never take traffic.
    assert f"server canary 127.0.0.1:{haproxy.PLACEHOLDER_PORT} weight 0" in cfg
    assert cfg.count(" disabled") == 2  # the canary slot and its metrics mirror
    assert "prometheus-exporter" in cfg
    without = haproxy.render_config(tmp_path / "a.sock", 8200, [fe], exporter=False)
    assert "prometheus-exporter" not in without


def test_this_haproxy_build_is_detected_with_its_exporter() -> None:
    assert haproxy.has_prometheus_exporter(find_binary("haproxy")) is True
    assert haproxy.has_prometheus_exporter("/nonexistent/haproxy") is False


def test_slots_follow_the_strategy() -> None:
    assert haproxy.slots_for(Strategy.CANARY) == ("stable", "canary")
    assert haproxy.slots_for(Strategy.BLUEGREEN) == ("blue", "green")


def test_runtime_api_refuses_injection_and_bad_values(tmp_path: Path) -> None:
    api = haproxy.RuntimeApi(tmp_path / "none.sock")
    with pytest.raises(ValueError, match="single command"):
        api.command("set weight be_web/canary 10; shutdown sessions")
    with pytest.raises(ValueError, match=r"weight must be within 0\.\.256"):
        api.set_weight("be_web", "canary", 300)
    with pytest.raises(ValueError, match="state must be one of"):
        api.set_state("be_web", "canary", "up")


def test_prometheus_config_scrapes_every_second_each_slot_and_haproxy() -> None:
    text = prometheus.render_config({"web-stable": ("web", 8101), "web-canary": ("web", 8102)}, 8200)
    assert "scrape_interval: 1s" in text
    assert "127.0.0.1:8101" in text and "127.0.0.1:8102" in text and "127.0.0.1:8200" in text
    assert "service: 'web'" in text


def test_fault_dice_follow_the_profile() -> None:
    app = DemoApp("v9", FaultProfile(error_rate=0.2), seed=7)
    statuses = [app.serve_one()[0] for _ in range(5000)]
    share = statuses.count(500) / len(statuses)
    assert 0.18 < share < 0.22
    healthy = DemoApp("v1", FaultProfile(), seed=7)
    assert {healthy.serve_one()[0] for _ in range(500)} == {200}


def test_crash_after_n_requests_is_signalled_on_the_nth() -> None:
    app = DemoApp("v9", FaultProfile(crash_after=3), seed=1)
    assert [app.serve_one()[1] for _ in range(3)] == [False, False, True]


def test_fault_spec_bounds() -> None:
    with pytest.raises(ValidationError):
        FaultSpec(error_rate=1.5)
    with pytest.raises(ValidationError):
        FaultSpec(latency_ms=-1)


def test_local_stack_selects_haproxy_and_the_sandbox_prometheus(tmp_path: Path) -> None:
    cfg = load_stack("local", make_project(tmp_path).joinpath("stacks"))
    assert cfg.cloud.value == "local" and cfg.cluster is None
    assert cfg.rollout.target.kind == "haproxy"
    assert cfg.rollout.metrics.kind == "sandbox"
    assert cfg.services["web"].strategy is Strategy.CANARY and cfg.services["web"].image == "demo:v1"
    assert cfg.rollout_for("api").target.kind == "haproxy"
    assert cfg.sandbox.faults["v3"].error_rate == 0.2 and cfg.sandbox.rate_rps == 200


def test_bad_sandbox_config_names_the_key(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = project / "stacks" / "Pulumi.local.yaml"
    shipped = "      v3:\n        errorRate: 0.2"
    assert shipped in path.read_text()
    path.write_text(path.read_text().replace(shipped, "      v9:\n        errorRate: 2"))
    with pytest.raises(ConfigError, match=r"gantry:sandbox\.faults\.v9\.errorRate must be <= 1"):
        load_stack("local", project / "stacks")


def test_metrics_url_sentinel_needs_a_running_sandbox(tmp_path: Path) -> None:
    assert resolve_prometheus_url("http://prom:9090", tmp_path) == "http://prom:9090"
    with pytest.raises(SandboxError, match="gantry sandbox up"):
        resolve_prometheus_url("sandbox", tmp_path)


def test_missing_binary_message_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.sandbox.procs as procs

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setitem(procs._SEARCH, "prometheus", ())
    with pytest.raises(MissingBinary) as info:
        find_binary("prometheus")
    assert str(info.value) == "prometheus is not installed; install it with: sudo apt-get install -y prometheus"
