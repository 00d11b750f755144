"""Suite-wide fixtures: the engine marker's skip rule, the repository root, and every backend registered."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from infra import plugins

REPO = Path(__file__).resolve().parents[1]

# Stack config validates against the registered backends: register them as the CLI does, before any test.
plugins.load()
# The rollout fakes, drills and the CLI launcher with the test-only `file` target live in tests/rollout.
sys.path.insert(0, str(REPO / "tests" / "rollout"))
import drill_cli  # noqa: E402

drill_cli.register()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only tests that need the real Pulumi CLI may skip, and only where it is absent.
    if shutil.which("pulumi") is not None:
        return
    reason = "needs the pulumi CLI on PATH (marker 'engine')"
    for item in items:
        # The marker itself, not `"engine" in item.keywords`: keywords also hold every parent node's
        # name, so a checkout in a directory called "engine" would skip the whole suite.
        if item.get_closest_marker("engine") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def repo() -> Path:
    return REPO
