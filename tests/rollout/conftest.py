"""Fixtures shared by the rollout tests: a real Pulumi project and stack for the ``engine``-marked tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
