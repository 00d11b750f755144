"""Value types shared by every rule, the offline engine, the CrossGuard adapter and the reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

Urn = NewType("Urn", str)
PolicyId = NewType("PolicyId", str)


class Level(StrEnum):
    """How a rule is enforced; the names match CrossGuard's enforcement levels."""

    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    DISABLED = "disabled"


class TierName(StrEnum):
    """Stack tiers that levels can be set for (mirrors ``components.spec.Tier`` without importing it)."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class State(StrEnum):
    """The three outcomes of one rule on one subject."""

    COMPLIANT = "compliant"
    NON_COMPLIANT = "non-compliant"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a rule decided; ``message`` is set only when non-compliant."""

    state: State
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.state is State.NON_COMPLIANT


COMPLIANT = Outcome(State.COMPLIANT)
NOT_APPLICABLE = Outcome(State.NOT_APPLICABLE)


def fail(message: str) -> Outcome:
    """A non-compliant outcome with the message shown to the user."""
    return Outcome(State.NON_COMPLIANT, message)


def fail_all(messages: Sequence[str]) -> Outcome:
    """Non-compliant when any message was collected, compliant otherwise."""
    return fail("; ".join(messages)) if messages else COMPLIANT


Props = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where the user's program constructed a resource: a project-relative file and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource as a rule sees it: type, engine-form (camelCase) props and graph edges.

    ``provider_props`` are the props of the resource's explicit provider (default tags, namespace),
    because those change what the resource really gets.
    """

    urn: str
    type: str
    name: str
    props: Props
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    provider_props: Props = field(default_factory=dict)
    ignore_changes: tuple[str, ...] = ()
    protect: bool = False
    location: SourceLocation | None = None
    """Where the program constructed it (from the SDK's source position), when known."""
    custom: bool = True
    """False for component resources (no cloud object of their own)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Rule inputs that come from config, never only from code: the tier, machine prices, and each rule's
    options (the policy config file's properties, with the stack's ``gantry:policy`` block over them)."""

    tier: TierName = TierName.PROD
    prices: Mapping[str, float] = field(default_factory=dict)
    """Hourly on-demand price per machine type, from ``policies/prices.json``."""
    options: Mapping[str, object] = field(default_factory=dict)
    """Each configurable rule's validated options (a ``RuleOptions`` model) by policy id; rules read theirs
    with ``policies.rule.options_of``, which falls back to the model's defaults."""

    @property
    def prod(self) -> bool:
        return self.tier is TierName.PROD


ResourceCheck = Callable[[Resource, Settings], Outcome]
"""A resource rule: pure, one resource at a time."""


@dataclass(frozen=True, slots=True)
class StackOutcome:
    """A stack rule's decision about one resource (or the whole stack when ``urn`` is None)."""

    urn: str | None
    outcome: Outcome


StackCheck = Callable[[Sequence[Resource], Settings], list[StackOutcome]]
"""A stack rule: sees every resource with parents and dependencies; returns only its subjects."""
