"""Recommended Kubernetes labels and selectors for delivered services; used by the k8s components.

Selectors hold only labels that never change for the life of a Deployment (a Deployment's
``spec.selector`` is immutable), so ``version`` lives on pods but never in a selector.
"""

from __future__ import annotations

from enum import StrEnum

from components.image import ImageRef, ImageRefError

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



class Track(StrEnum):
    STABLE = "stable"
    CANARY = "canary"


def version_of(image: str) -> str:
    """A label-safe version from an image reference: its tag, else a digest prefix (``ImageRef.version``)."""
    try:
        return ImageRef.parse(image).version
    except ImageRefError:
        return "unknown"  # specs validate their images; a raw manifest's may be anything


def common(service: str, part_of: str) -> dict[str, str]:
    """Labels on every object a service owns (Services, PDBs, routes); pods refine ``instance``."""
    return {NAME: service, INSTANCE: service, PART_OF: part_of, MANAGED_BY: MANAGER}


def selector(service: str, key: str, value: str) -> dict[str, str]:
    """The immutable selector of one track or color: the app name plus its track/color label."""
    return {NAME: service, INSTANCE: f"{service}-{value}", key: value}


def pod_labels(service: str, part_of: str, key: str, value: str, image: str) -> dict[str, str]:
    """Pod-template labels: the selector, plus version, part-of and managed-by."""
    return {**common(service, part_of), **selector(service, key, value), VERSION: version_of(image)}
