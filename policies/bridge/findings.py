"""Checkov's results as engine findings: mapped back to URNs, levelled, waived, and merged with Gantry's.

Called by ``policies.engine.check_stack`` after the pack's own rules ran. A check in the alias table never
reports on its own: it becomes an alias on the Gantry finding for the same resource.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from policies.bridge.catalog import ALIASES
from policies.bridge.runner import CheckRecord, ScanResult
from policies.bridge.translate import Bundle
from policies.engine import Finding, FindingStatus
from policies.model import Level, Resource
from policies.waivers import Waiver, find


@dataclass(slots=True)
class BridgeSummary:
    """What the bridge did for one stack, for reports and the closing figures."""

    status: str
    """``ran``, ``off`` (disabled or --no-checkov), ``unavailable: <why>`` or ``failed: <why>``."""
    version: str = ""
    failed: int = 0
    passed: int = 0
    aliased: int = 0
    unmapped: list[str] = field(default_factory=list)
    """Checkov resource ids that did not map back to a URN (should stay empty)."""
    skipped_types: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    references: int = 0
    import_cpu_seconds: float = 0.0
    scan_cpu_seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "version": self.version, "failed": self.failed, "passed": self.passed,
                "aliased": self.aliased, "unmapped": list(self.unmapped), "skippedTypes": dict(self.skipped_types),
                "errors": list(self.errors), "seconds": round(self.seconds, 3), "references": self.references,
                "importCpuSeconds": self.import_cpu_seconds, "scanCpuSeconds": self.scan_cpu_seconds}


def _message(rec: CheckRecord) -> str:
    where = f"{rec.framework.value} {rec.resource}"
    guide = f"; see {rec.guideline}" if rec.guideline else ""
    return f"{rec.check_name} (Checkov {rec.check_id} on {where}){guide}"


def merge(
    gantry: Sequence[Finding],
    scan: ScanResult,
    bundle: Bundle,
    views: Sequence[Resource],
    level_of: Callable[[str], Level],
    waivers: Sequence[Waiver],
    resource_waivers: Mapping[str, Sequence[Waiver]],
    today: dt.date,
) -> tuple[list[Finding], BridgeSummary]:
    """Gantry's findings with Checkov's added: aliases attached, levels and waivers applied, no duplicates."""
    by_urn = {v.urn: v for v in views}
    summary = BridgeSummary(status="ran", version=scan.version, passed=len(scan.passed), errors=list(scan.errors),
                            seconds=scan.seconds, references=bundle.references, skipped_types=dict(bundle.skipped),
                            import_cpu_seconds=scan.import_cpu_seconds, scan_cpu_seconds=scan.scan_cpu_seconds)
    out = list(gantry)
    index = {(f.policy, f.urn): i for i, f in enumerate(out)}
    seen: set[tuple[str, str]] = set()
    for rec in scan.failed:
        urn = bundle.lookup(rec.framework, rec.resource)
        if urn is None:
            summary.unmapped.append(f"{rec.check_id} {rec.framework.value}:{rec.resource}")
            continue
        if (rec.check_id, urn) in seen:
            continue
        seen.add((rec.check_id, urn))
        summary.failed += 1
        gantry_id = ALIASES.get(rec.check_id)
        if gantry_id is not None:
            # Gantry's rule is the authority for what it judges: attach the alias where it found the same
            # problem; where it did not, Gantry's reading of the Pulumi shape wins and nothing is reported.
            summary.aliased += 1
            i = index.get((gantry_id, urn))
            if i is not None and rec.check_id not in out[i].aliases:
                out[i] = replace(out[i], aliases=(*out[i].aliases, rec.check_id))
            continue
        level = level_of(rec.check_id)
        if level is Level.DISABLED:
            continue
        view = by_urn.get(urn)
        type_, name = (view.type, view.name) if view is not None else ("?", urn.rsplit("::", 1)[-1])
        finding = Finding(rec.check_id, FindingStatus.VIOLATION, level, urn, type_, name, _message(rec),
                          check_name=rec.check_name, source="checkov",
                          location=view.location if view is not None else None)
        waiver = find([*resource_waivers.get(urn, []), *waivers], rec.check_id, urn, today)
        if waiver is not None and not waiver.expired(today):
            finding = replace(finding, status=FindingStatus.WAIVED,
                              waiver=f"{waiver.reason} ({waiver.source}"
                                     f"{', until ' + waiver.expires.isoformat() if waiver.expires else ''})")
        out.append(finding)
    return out, summary
