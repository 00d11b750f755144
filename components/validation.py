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


class SpecError(ValueError):
    """A spec or component argument breaks a documented constraint."""

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


_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._\-/:][a-z0-9]+)*?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


def check_image(field: str, value: object) -> list[Violation]:
    """Images carry a tag or a digest, and ``latest`` is refused: a rollout needs a fixed version."""
    if is_unknown(value):
        return []
    constraint = "an image pinned by a tag other than 'latest' or by a sha256 digest"
    if not isinstance(value, str):
        return [Violation(field, constraint, value)]
    last = value.rsplit("/", 1)[-1]
    match = _IMAGE.match(value)
    has_digest = "@sha256:" in value
    has_tag = ":" in last.split("@", 1)[0]
    tag = last.split("@", 1)[0].split(":", 1)[1] if has_tag else None
    if match is None or not (has_digest or has_tag) or tag == "latest":
        return [Violation(field, constraint, value)]
    # The OCI distribution spec caps a tag at 128 characters and Docker a name at 255; registries refuse more.
    if tag is not None and not _TAG.fullmatch(tag):
        return [Violation(f"{field} tag", "at most 128 characters of letters, digits, '_', '.' and '-', not "
                                          "starting with '.' or '-'", tag)]
    name = value.split("@", 1)[0]
    name = name[: len(name) - len(tag) - 1] if tag is not None else name
    if len(name) > 255:
        return [Violation(f"{field} name", "at most 255 characters", name)]
    return []
