"""PulumiDrTarget with the real Pulumi CLI on a local file backend (marker ``engine``: skipped without the CLI).

Keeps the Automation API fake honest for DR: the same path-config writes (``gantry:services.<s>.replicas``,
``gantry:dr.active``) and ``up`` on two real stacks, read back from their outputs and config.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dr_helpers import make_settings

from infra.dr.pulumi_target import PulumiDrTarget

PROGRAM = '''\
import pulumi

config = pulumi.Config("gantry")
services = config.require_object("services")
pulumi.export("replicas", {name: int(svc.get("replicas", 1)) for name, svc in services.items()})
pulumi.export("active", (config.get_object("dr") or {}).get("active", "primary"))
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from pulumi import automation as auto

    state, home, proj = tmp_path / "state", tmp_path / "home", tmp_path / "proj"
    for d in (state, home, proj):
        d.mkdir()
    (proj / "Pulumi.yaml").write_text(
        f"name: gantry-dr-engine-test\nruntime:\n  name: python\n  options:\n    virtualenv: {Path(sys.prefix)}\n")
    (proj / "__main__.py").write_text(PROGRAM)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{state}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "engine-test-passphrase")
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    for name in ("prod", "prod-dr"):
        stack = auto.create_stack(name, work_dir=str(proj))
        stack.set_config("gantry:services.web.replicas", auto.ConfigValue("1"), path=True)
        stack.set_config("gantry:dr.primary", auto.ConfigValue("prod"), path=True)
        stack.up()
    return proj


@pytest.mark.engine
def test_scale_and_switch_on_real_stacks(project: Path) -> None:
    from pulumi import automation as auto

    lines: list[str] = []
    target = PulumiDrTarget(make_settings(), project, on_output=lines.append)
    assert target.active() == "primary"
    target.scale(3)
    standby = auto.select_stack("prod-dr", work_dir=str(project))
    assert standby.outputs()["replicas"].value == {"web": 3}
    target.switch("standby")
    prod = auto.select_stack("prod", work_dir=str(project))
    assert prod.outputs()["active"].value == "standby"
    assert target.active() == "standby"
    assert prod.get_config("gantry:dr.primary", path=True).value == "prod"  # the rest of the section is kept
    assert any("send traffic to the standby" in line for line in lines)
