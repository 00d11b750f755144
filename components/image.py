"""The image reference: one typed value and one grammar (the OCI distribution reference), parsed once at the edge.

``ImageRef.parse`` is the only parser of ``registry/repository:tag@digest`` in Gantry: the stack config
(``ServiceSpec``), the CLI's ``--image``, the policy rules and the pod labels all go through it, so an image
accepted in one place is accepted everywhere. A rollout needs a fixed version, so a reference must carry a
tag other than ``latest`` or a digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.errors import InputError

# github.com/distribution/reference (the grammar registries and Docker implement), restricted as Gantry needs:
#   reference := name [":" tag] ["@" digest];  name := [domain "/"] path-component ["/" path-component]*
#   domain    := domain-component ["." domain-component]* [":" port] (the first component, when it has a "." or
#                a ":" or is "localhost");  path-component := [a-z0-9]+ ([_.]|__|-+ [a-z0-9]+)*
#   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};  digest := "sha256:" 64 lowercase hex digits (the only
#                algorithm registries are required to support, and the one Gantry promises in its messages)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.-]")

MAX_NAME = 255
"""Docker caps a repository name (domain included) at 255 characters; registries refuse more."""
PINNED = "an image pinned by a tag other than 'latest' or by a sha256 digest"
"""The constraint every image field states when it is refused."""


class ImageRefError(InputError, ValueError):
    """An image reference that does not parse; ``field`` names the part at fault (``image``, ``image tag``)."""

    def __init__(self, field: str, constraint: str, value: object) -> None:
        self.field, self.constraint, self.value = field, constraint, value
        super().__init__(f"{field} must be {constraint}, but {value!r} was given")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """``[domain/]repository[:tag][@digest]``; at least one of ``tag`` and ``digest`` is set."""

    domain: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None
    """``sha256:<64 hex>``."""

    @property
    def name(self) -> str:
        """The repository with its registry: what the tag and digest pin a version of."""
        return f"{self.domain}/{self.repository}" if self.domain else self.repository

    @property
    def version(self) -> str:
        """A label-safe version: the tag, else the digest's first 12 hex digits (``sha256-0f0f0f0f0f0f``)."""
        raw = self.tag or (self.digest or "unknown").replace(":", "-")[:19]
        return _LABEL_BAD.sub("-", raw)[:63].strip("-_.") or "unknown"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @staticmethod
    def parse(text: object, field: str = "image") -> ImageRef:
        """The reference ``text`` names; ``ImageRefError`` (a ``ValueError``) says which part is wrong."""
        if not isinstance(text, str):
            raise ImageRefError(field, PINNED, text)
        rest, at, digest = text.partition("@")
        if at and _DIGEST.fullmatch(digest) is None:
            raise ImageRefError(field, PINNED, text)
        name, tag = rest, None
        colon = rest.rfind(":")
        if colon > rest.rfind("/"):  # a ":" after the last "/" starts the tag; before it, a registry port
            name, tag = rest[:colon], rest[colon + 1:]
            if tag == "latest" or not tag:
                raise ImageRefError(field, PINNED, text)
            if _TAG.fullmatch(tag) is None:
                raise ImageRefError(f"{field} tag", "at most 128 characters of letters, digits, '_', '.' and '-', "
                                                    "not starting with '.' or '-'", tag)
        if tag is None and not at:
            raise ImageRefError(field, PINNED, text)
        if len(name) > MAX_NAME:
            raise ImageRefError(f"{field} name", f"at most {MAX_NAME} characters", name)
        first, slash, remainder = name.partition("/")
        domain = None
        if slash and ("." in first or ":" in first or first == "localhost"):
            domain, name = first, remainder
            if _DOMAIN.fullmatch(domain) is None:
                raise ImageRefError(field, PINNED, text)
        if not all(_PATH_COMPONENT.fullmatch(part) for part in name.split("/")):
            raise ImageRefError(field, PINNED, text)
        return ImageRef(domain, name, tag, digest if at else None)
