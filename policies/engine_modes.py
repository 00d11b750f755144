"""Small enums the CLI imports at start-up without loading the engine."""

from __future__ import annotations

from enum import StrEnum


class BridgeMode(StrEnum):
    """``auto`` runs Checkov when installed (and says so when not); ``on`` requires it; ``off`` skips it."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"
