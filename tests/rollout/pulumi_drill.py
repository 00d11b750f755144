"""The fake Automation API stack persisted to a file, so a forked drill child's effects survive its SIGKILL.

Used by tests/rollout/test_op_drill.py and bench/rollout_kill.py: ``FileStack`` loads a ``FakeStack``
from JSON before every call and writes it back (atomically) after, so the in-operation drill can kill
the engine between two effects of ``PulumiStackTarget`` and resume it in another process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fake_automation import FakeStack, FakeStackWorkspace, services_program

from components.spec import Strategy
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import Target

KEPT = ("config", "deployment", "stack_outputs")


def initial_stack() -> FakeStack:
    services = {
        "web": {"namespace": "web", "image": "app:1.0", "strategy": "canary", "canaryWeight": 0},
        "api": {"namespace": "api", "image": "app:1.0", "strategy": "bluegreen", "activeColor": "blue"},
    }
    stack = FakeStack("drill", config={"gantry:services": services}, program=services_program)
    stack.up()  # deployed once, so the outputs are the live truth from the start
    return stack


class FileStack:
    """A ``StackHandle`` whose state lives in ``path``: every call is load, delegate, save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.workspace = FakeStackWorkspace()
        if not path.exists():
            self._save(initial_stack())

    @property
    def name(self) -> str:
        return "drill"

    def _load(self) -> FakeStack:
        doc = json.loads(self.path.read_text())
        stack = FakeStack("drill", program=services_program)
        for key in KEPT:
            setattr(stack, key, doc[key])
        stack.lock = tuple(doc["lock"]) if doc["lock"] else None
        stack.workspace = self.workspace  # the environment of the `pulumi` the target is about to run
        return stack

    def _save(self, stack: FakeStack) -> None:
        doc = {key: getattr(stack, key) for key in KEPT}
        doc["lock"] = list(stack.lock) if stack.lock else None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        stack = self._load()
        try:
            return getattr(stack, method)(*args, **kwargs)
        finally:
            self._save(stack)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_") or not callable(getattr(FakeStack, method, None)):
            raise AttributeError(method)
        return partial(self._call, method)


def make_pulumi_target(directory: Path, strategy: Strategy) -> Target:
    """The drill's target factory: ``web`` (canary) or ``api`` (blue/green) on the file-backed fake stack."""
    directory.mkdir(parents=True, exist_ok=True)
    stack = FileStack(directory / "stack.json")
    service = "web" if strategy is Strategy.CANARY else "api"
    return PulumiStackTarget("drill", service, directory, strategy, stack_factory=lambda _n, _d: stack,
                             checkpoint_dir=directory / "checkpoints")
