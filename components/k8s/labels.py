"""Recommended Kubernetes labels and selectors for delivered services; used by the k8s components.

Selectors hold only labels that never change for the life of a Deployment (a Deployment's
``spec.selector`` is immutable), so ``version`` lives on pods but never in a selector.
"""

from __future__ import annotations

import re
from enum import StrEnum

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
TRACK = "gantry.dev/track"
"""Canary: ``stable`` or ``canary``."""
COLOR = "gantry.dev/color"
"""Blue/green: ``blue`` or ``green``."""
MANAGER = "gantry"

_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]")


class Track(StrEnum):
    STABLE = "stable"
    CANARY = "canary"


def version_of(image: str) -> str:
    """A label-safe version from an image reference: its tag, else a digest prefix."""
    last = image.rsplit("/", 1)[-1]
    name_tag, _, digest = last.partition("@")
    _, _, tag = name_tag.partition(":")
    raw = tag or (digest.replace(":", "-")[:19] if digest else "unknown")
    value = _LABEL_VALUE_BAD.sub("-", raw)[:63]
    # Label values must start and end with an alphanumeric character.
    return value.strip("-_.") or "unknown"


def common(service: str, part_of: str) -> dict[str, str]:
    """Labels on every object a service owns (Services, PDBs, routes); pods refine ``instance``."""
    return {NAME: service, INSTANCE: service, PART_OF: part_of, MANAGED_BY: MANAGER}


def selector(service: str, key: str, value: str) -> dict[str, str]:
    """The immutable selector of one track or color: the app name plus its track/color label."""
    return {NAME: service, INSTANCE: f"{service}-{value}", key: value}


def pod_labels(service: str, part_of: str, key: str, value: str, image: str) -> dict[str, str]:
    """Pod-template labels: the selector, plus version, part-of and managed-by."""
    return {**common(service, part_of), **selector(service, key, value), VERSION: version_of(image)}
