"""Every rule's fixtures, discovered from the registry: each rule module declares its own (``fixtures()``)."""

from __future__ import annotations

from dataclasses import dataclass

from policies.model import Resource, Settings
from policies.pack import RULES


@dataclass(frozen=True)
class Case:
    policy: str
    compliant: bool
    label: str
    resources: tuple[Resource, ...]
    subject: str | None
    """URN the outcome is about; None for a stack-wide outcome (cost-budget)."""
    settings: Settings

    @property
    def id(self) -> str:
        return f"{self.policy}:{'ok' if self.compliant else 'bad'}:{self.label}"


CASES: list[Case] = [Case(r.id, f.compliant, f.label, f.resources, f.subject, f.settings)
                     for r in RULES for f in r.fixtures()]
