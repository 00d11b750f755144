"""The crash drills' launcher: the real ``gantry`` CLI, plus the test-only ``file`` target and the kill hook.

``python tests/rollout/drill_cli.py <gantry args>`` runs ``infra.cli`` after registering the ``file``
rollout target (``JsonFileTarget``, state in ``.gantry/targets/<stack>-<service>.json``, no
infrastructure) and, when ``GANTRY_DRILL_KILL_AT=before:N|after:N`` is set, arming the journal hook that
SIGKILLs this process at its N-th append. Neither is a user option: the installed ``gantry`` knows no
``file`` target and never reads that variable. In-process tests import ``register()`` for the target.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drills import kill_hook_from_env
from fakes import JsonFileTarget

from infra import registry
from infra.rollout.backends import RolloutTarget, TargetContext
from infra.rollout.seams import Target

GANTRY = [sys.executable, str(Path(__file__).resolve())]
"""argv prefix that runs the CLI through this launcher (instead of ``python -m infra.cli``)."""


def file_target_path(project: Path, stack: str, service: str) -> Path:
    return project / ".gantry" / "targets" / f"{stack}-{service}.json"


class FileTargetSettings(RolloutTarget):
    """Test fake: a JSON file under ``.gantry/targets/`` stands for the stack's routing."""

    kind: Literal["file"] = "file"

    def build(self, ctx: TargetContext) -> Target:
        svc = ctx.config.services[ctx.service]
        path = file_target_path(ctx.project, ctx.stack, ctx.service)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JsonFileTarget(path, ctx.strategy, svc.image, color=svc.active_color)

    def describe(self, stack: str, service: str) -> str:
        return f".gantry/targets/{stack}-{service}.json (drills)"


def register() -> None:
    """Register the ``file`` target in this process (idempotent)."""
    if "file" not in registry.TARGETS:
        registry.TARGETS.register(FileTargetSettings)


def main() -> None:
    from infra import cli
    from infra.commands import rollout

    register()
    rollout.ON_APPEND = kill_hook_from_env()
    cli.main()


if __name__ == "__main__":
    main()
