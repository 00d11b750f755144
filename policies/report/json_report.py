"""The JSON report: every finding with policy, status, level, urn, type, name and message, plus a summary."""

from __future__ import annotations

import json
from collections.abc import Sequence

from policies.engine import FindingStatus, StackReport
from policies.model import Level

SCHEMA_VERSION = 1


def summary(reports: Sequence[StackReport]) -> dict[str, object]:
    findings = [f for r in reports for f in r.findings]
    return {
        "stacks": len(reports),
        "resources": sum(r.resources for r in reports),
        "violations": sum(1 for f in findings if f.status is FindingStatus.VIOLATION),
        "mandatory": sum(1 for f in findings if f.status is FindingStatus.VIOLATION and f.level is Level.MANDATORY),
        "advisory": sum(1 for f in findings if f.status is FindingStatus.VIOLATION and f.level is Level.ADVISORY),
        "waived": sum(1 for f in findings if f.status is FindingStatus.WAIVED),
        "errors": sum(1 for f in findings if f.status is FindingStatus.ERROR),
        "blocking": sum(r.blocking for r in reports),
        "passed": all(r.passed for r in reports),
        "partial": sum(1 for r in reports if r.partial),
    }


def to_document(reports: Sequence[StackReport]) -> dict[str, object]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "stacks": [
            {
                "project": r.project,
                "stack": r.stack,
                "tier": r.tier.value,
                "tierSource": r.tier_source,
                "checkov": r.bridge.to_json() if r.bridge is not None else None,
                "resources": r.resources,
                "rules": r.rules,
                "passed": r.passed,
                "partial": r.partial,
                "error": r.error,
                "seconds": round(r.seconds, 3),
                "findings": [{"stack": r.stack, **f.to_json()} for f in r.findings],
            }
            for r in reports
        ],
        "findings": [{"stack": r.stack, **f.to_json()} for r in reports for f in r.findings],
        "summary": summary(reports),
    }


def render_json(reports: Sequence[StackReport]) -> str:
    return json.dumps(to_document(reports), indent=2) + "\n"
