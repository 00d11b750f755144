"""Fixtures shared by the rollout tests: a real Pulumi project and stack for the ``engine``-marked tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
def pulumi_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
