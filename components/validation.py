"""Pure validation helpers shared by specs, components and the stack-config loader.

Every message follows one template: ``<field> must be <constraint>, but <value> was given``.
Values that are unknown Pulumi ``Output``s are skipped, the way CDK skips unresolved tokens.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from components.errors import InputError
from components.image import ImageRef, ImageRefError


class SpecError(InputError, ValueError):
    """A spec or component argument breaks a documented constraint (a ``ValueError`` too, so pydantic
    validators report it as a field error)."""

    def __init__(self, field: str, constraint: str, value: object) -> None:
        self.field = field
        self.constraint = constraint
        self.value = value
        super().__init__(message(field, constraint, value))


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint, before it becomes an exception or a config error line."""

    field: str
    constraint: str
    value: object

    def __str__(self) -> str:
        return message(self.field, self.constraint, self.value)


def message(field: str, constraint: str, value: object) -> str:
    """Render the one message template used everywhere in Gantry."""
    return f"{field} must be {constraint}, but {_show(value)} was given"


def _show(value: object) -> str:
    # A value may come from a hostile stack file: never echo more than a line of it.
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) <= 100:
        return text
    if isinstance(value, str):
        return repr(value[:60]) + f"... ({len(value)} characters)"
    return text[:60] + f"... ({len(text)} characters)"


def is_unknown(value: object) -> bool:
    """True for values we cannot judge at construction time (Pulumi Outputs)."""
    # Importing pulumi costs about a second (gRPC, protobufs); config loading for the CLI must not pay it.
    # Without pulumi loaded there can be no Output to skip.
    pulumi = sys.modules.get("pulumi")
    return pulumi is not None and isinstance(value, pulumi.Output)


def raise_first(violations: Iterable[Violation]) -> None:
    """Raise the first violation as a ``SpecError``; components call this on construction."""
    for v in violations:
        raise SpecError(v.field, v.constraint, v.value)


def check_cidr(field: str, value: object) -> list[Violation]:
    if is_unknown(value):
        return []
    try:
        ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return [Violation(field, "a valid CIDR block such as 10.0.0.0/16", value)]
    return []


_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_GCP_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
_AZURE_REGION = re.compile(r"^[a-z][a-z0-9]+$")
REGION_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "aws": (_AWS_REGION, "an AWS region such as us-east-1"),
    "gcp": (_GCP_REGION, "a GCP region such as europe-west1"),
    "azure": (_AZURE_REGION, "an Azure region such as westeurope"),
}


def check_region(field: str, cloud: str, value: object) -> list[Violation]:
    if is_unknown(value) or cloud not in REGION_SHAPES:
        return []
    pattern, constraint = REGION_SHAPES[cloud]
    if not isinstance(value, str) or not pattern.match(value):
        return [Violation(field, constraint, value)]
    return []


def check_zone(field: str, cloud: str, region: str, value: object) -> list[Violation]:
    """Zones must sit inside the region: us-east-1a, europe-west1-b, or Azure's 1/2/3."""
    if is_unknown(value):
        return []
    text = str(value)
    if cloud == "azure":
        ok = text in {"1", "2", "3"}
        shape = "an Azure availability zone 1, 2 or 3"
    elif cloud == "aws":
        ok = re.fullmatch(re.escape(region) + r"[a-z]", text) is not None
        shape = f"a zone of {region} such as {region}a"
    else:
        ok = re.fullmatch(re.escape(region) + r"-[a-z]", text) is not None
        shape = f"a zone of {region} such as {region}-b"
    return [] if ok else [Violation(field, shape, value)]


def check_image(field: str, value: object) -> list[Violation]:
    """Images carry a tag or a digest, and ``latest`` is refused: a rollout needs a fixed version.

    The grammar is ``ImageRef.parse``'s (``components.image``), the only one in Gantry."""
    if is_unknown(value):
        return []
    try:
        ImageRef.parse(value, field)
    except ImageRefError as exc:
        return [Violation(exc.field, exc.constraint, exc.value)]
    return []
