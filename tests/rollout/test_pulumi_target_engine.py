"""A real canary with the real Pulumi CLI on a local file backend (marker ``engine``: skipped without the CLI).

The program is tiny (no providers, only the services' typed outputs, resolved as the Gantry program resolves
them), so the test needs no cloud and no plugin downloads: only the CLI and its bundled Python language host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.spec import Strategy
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import TrafficState


def routing(target: PulumiStackTarget) -> tuple[object, object, object]:
    out = target.outputs()
    return out["image"], out["canaryImage"], out["canaryWeight"]


@pytest.mark.engine
def test_real_canary_then_rollback_then_promotion(pulumi_project: Path) -> None:
    lines: list[str] = []
    target = PulumiStackTarget("dev", "web", pulumi_project, Strategy.CANARY, on_output=lines.append,
                               checkpoint_dir=pulumi_project / "checkpoints")
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
