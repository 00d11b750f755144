"""A real canary with the real Pulumi CLI on a local file backend (marker ``engine``: skipped without the CLI).

The program is tiny (no providers, only the services' typed outputs, resolved as the Gantry program resolves
them), so the test needs no cloud and no plugin downloads: only the CLI and its bundled Python language host.
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

from components.k8s.outputs import ServiceOutputs
from infra.config import ServiceConfig
from infra.progress import instruction_from_env, previous_services, read_own_outputs, resolve_services

# The Gantry program's service half: progress from the previous outputs and gantry's step, typed outputs.
services = {name: ServiceConfig.model_validate(svc)
            for name, svc in pulumi.Config("gantry").require_object("services").items()}
resolved = resolve_services(services, previous_services(read_own_outputs()), instruction_from_env(pulumi.get_stack()))
pulumi.export("services", {name: ServiceOutputs.build(spec, desired_image=desired, rollout=progress.rollout).to_json()
                           for name, (spec, desired, progress) in resolved.items()})
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


def routing(target: PulumiStackTarget) -> tuple[object, object, object]:
    out = target.outputs()
    return out["image"], out["canaryImage"], out["canaryWeight"]


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
    assert routing(target) == ("ghcr.io/acme/web:1.0", None, 0)

    target.prepare("ghcr.io/acme/web:1.2")
    for weight in (10, 25, 50, 100):
        target.set_weights(weight)
    target.promote()
    assert routing(target) == ("ghcr.io/acme/web:1.2", None, 0)
    assert any("Updating (dev)" in line or "Updating" in line for line in lines), "progress was streamed"
