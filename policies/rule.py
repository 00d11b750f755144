"""What one policy rule declares: id, levels per tier, text, typed options, check function and fixtures.

Each rule module under ``policies/rules/<category>/`` defines one ``RULE`` built with ``resource_rule`` or
``stack_rule``; ``policies.rules.discover`` collects them, and the pack, the policy config, the README's
rules table and the meta-tests are derived from that list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from policies.model import Level, PolicyId, Resource, ResourceCheck, Settings, StackCheck, TierName


class RuleOptions(BaseModel):
    """Base of a rule's typed options: the properties its ``policy-config.json`` entry may set.

    Properties are camelCase in the file, validated strictly by type (a string is not a number), and each
    field's ``description`` is the constraint shown when a value is refused: ``<rule>.<property> must be
    <description>, but <value> was given``.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=to_camel, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class Fixture:
    """One example the rule must decide: compliant (judged and passed) or non-compliant."""

    label: str
    compliant: bool
    resources: tuple[Resource, ...]
    subject: str | None
    """The URN the outcome is about; None for a stack-wide outcome (cost-budget)."""
    settings: Settings


def _no_fixtures() -> Sequence[Fixture]:
    return ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy: exactly one of ``resource`` or ``stack`` is set."""

    id: PolicyId
    category: str
    level: Level
    description: str
    remediation: str
    resource: ResourceCheck | None = None
    stack: StackCheck | None = None
    tiers: Mapping[TierName, Level] = field(default_factory=dict)
    """Levels that differ from ``level`` in some tiers (``{TierName.DEV: Level.ADVISORY}``)."""
    options: type[RuleOptions] | None = None
    """The rule's configurable properties, or None when it has none."""
    fixtures: Callable[[], Sequence[Fixture]] = _no_fixtures
    """Built lazily: the fixtures import the builders, which the pack never needs at start-up."""

    @property
    def kind(self) -> str:
        return "resource" if self.resource is not None else "stack"

    @property
    def function_name(self) -> str:
        fn = self.resource or self.stack
        return getattr(fn, "__name__", "?")

    @property
    def function_module(self) -> str:
        fn = self.resource or self.stack
        return str(getattr(fn, "__module__", "?"))

    def default_level(self, tier: TierName) -> Level:
        """The rule's own level at ``tier``, before any policy config."""
        return self.tiers.get(tier, self.level)


def resource_rule(id: str, check: ResourceCheck, *, category: str, level: Level, description: str,
                  remediation: str, tiers: Mapping[TierName, Level] | None = None,
                  options: type[RuleOptions] | None = None,
                  fixtures: Callable[[], Sequence[Fixture]] = _no_fixtures) -> Rule:
    """A rule judged one resource at a time."""
    return Rule(PolicyId(id), category, level, description, remediation, resource=check, tiers=dict(tiers or {}),
                options=options, fixtures=fixtures)


def stack_rule(id: str, check: StackCheck, *, category: str, level: Level, description: str, remediation: str,
               tiers: Mapping[TierName, Level] | None = None, options: type[RuleOptions] | None = None,
               fixtures: Callable[[], Sequence[Fixture]] = _no_fixtures) -> Rule:
    """A rule that sees every resource (parents, dependencies) and returns only its subjects."""
    return Rule(PolicyId(id), category, level, description, remediation, stack=check, tiers=dict(tiers or {}),
                options=options, fixtures=fixtures)


M, A = Level.MANDATORY, Level.ADVISORY
DEV, STAGING, PROD = TierName.DEV, TierName.STAGING, TierName.PROD


OptionsT = TypeVar("OptionsT", bound=RuleOptions)


def options_of(settings: Settings, policy: str, model: type[OptionsT]) -> OptionsT:
    """The rule's validated options from the policy config, or the model's defaults."""
    value = settings.options.get(policy)
    return value if isinstance(value, model) else model()
