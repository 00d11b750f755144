"""A real canary with the real Pulumi CLI on a local file backend (marker ``engine``: skipped without the CLI).

The program is tiny (no providers, only stack outputs echoing the service config), so the test needs
no cloud and no plugin downloads: only the CLI and its bundled Python language host.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from components.spec import Strategy
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import TrafficState

PROGRAM = '''\
import pulumi

services = pulumi.Config("gantry").require_object("services")
pulumi.export("services", {
    name: {"image": svc.get("image"), "canaryImage": svc.get("canaryImage"),
           "canaryWeight": int(svc.get("canaryWeight", 0))}
    for name, svc in services.items()
})
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from pulumi import automation as auto

    state, home, proj = tmp_path / "state", tmp_path / "home", tmp_path / "proj"
    for d in (state, home, proj):
        d.mkdir()
    venv = Path(sys.prefix)
    (proj / "Pulumi.yaml").write_text(
        f"name: gantry-engine-test\nruntime:\n  name: python\n  options:\n    virtualenv: {venv}\n")
    (proj / "__main__.py").write_text(PROGRAM)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{state}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "engine-test-passphrase")
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    stack = auto.create_stack("dev", work_dir=str(proj))
    for key, value in (("image", "ghcr.io/acme/web:1.0"), ("namespace", "web"), ("canaryWeight", "0")):
        stack.set_config(f"gantry:services.web.{key}", auto.ConfigValue(value), path=True)
    stack.up()
    return proj


@pytest.mark.engine
def test_real_canary_then_rollback_then_promotion(project: Path) -> None:
    lines: list[str] = []
    target = PulumiStackTarget("dev", "web", project, Strategy.CANARY, on_output=lines.append,
                               checkpoint_dir=project / "checkpoints")
    checkpoint = target.checkpoint()
    assert Path(str(checkpoint["file"])).exists()

    target.prepare("ghcr.io/acme/web:1.1")
    target.set_weights(10)
    assert target.outputs()["canaryWeight"] == 10
    target.set_weights(50)
    assert target.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.0", "ghcr.io/acme/web:1.1", 50)

    target.revert(checkpoint)
    assert target.current() == TrafficState(Strategy.CANARY, "ghcr.io/acme/web:1.0", None, 0)
    assert target.outputs() == {"image": "ghcr.io/acme/web:1.0", "canaryImage": None, "canaryWeight": 0}

    target.prepare("ghcr.io/acme/web:1.2")
    for weight in (10, 25, 50, 100):
        target.set_weights(weight)
    target.promote()
    assert target.outputs() == {"image": "ghcr.io/acme/web:1.2", "canaryImage": None, "canaryWeight": 0}
    assert any("Updating (dev)" in line or "Updating" in line for line in lines), "progress was streamed"
