"""Fixtures for the DR tests: the rollout tests' Automation API fake on the path, and a DR settings builder."""

from __future__ import annotations

import sys
from pathlib import Path

# The faithful Automation API fake lives with the rollout tests; the DR engine drives the same seam.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "components"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))
