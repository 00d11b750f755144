"""Fixtures for the sandbox tests: a throwaway project with the local stack, and a real sandbox on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import leftovers, make_project

from infra.sandbox import lifecycle
from infra.sandbox.state import SandboxState


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = make_project(tmp_path / "proj")
    yield root
    # Whatever a test did, nothing it started may outlive it.
    lifecycle.down(root)
    assert leftovers(root) == []
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sandbox(project: Path) -> SandboxState:
    return lifecycle.up(project)
