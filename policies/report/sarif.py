"""The SARIF 2.1.0 report for GitHub code scanning; results point at the program line that built the resource.

Each resource's location comes from the render (the SDK's source position on registration, else the
first frame of the user's program); only resources without one fall back to searching the program and
stack files. A program that raised adds an error notification at the line that raised.

Mandatory findings are ``error``, advisory ones ``warning``; waived findings keep their level and carry
an external suppression with the waiver's reason; rules that raised are tool execution notifications.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from policies.engine import Finding, FindingStatus, StackReport
from policies.model import Level
from policies.pack import RULES, WAIVER_EXPIRED, WAIVER_INVALID

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_META = {
    WAIVER_EXPIRED: ("A waiver is past its expiry date.", "Renew the waiver with a new date or fix the finding."),
    WAIVER_INVALID: ("A gantry.io/waive tag or label cannot be accepted.",
                     "Write '<policy>=<reason>' with a known policy id and a reason."),
}


def _level(level: Level) -> str:
    return "error" if level is Level.MANDATORY else "warning" if level is Level.ADVISORY else "none"


def _descriptors() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for r in RULES:
        out.append({
            "id": r.id,
            "name": "".join(part.capitalize() for part in r.id.split("-")),
            "shortDescription": {"text": r.description},
            "fullDescription": {"text": f"{r.description} ({r.kind} rule, category {r.category})"},
            "help": {"text": r.remediation, "markdown": f"**Fix:** {r.remediation}"},
            "defaultConfiguration": {"level": _level(r.level)},
            "properties": {"category": r.category, "kind": r.kind, "tags": ["security", r.category]},
        })
    for pid, (desc, fix) in _META.items():
        out.append({"id": pid, "name": "".join(p.capitalize() for p in pid.split("-")),
                    "shortDescription": {"text": desc}, "fullDescription": {"text": desc},
                    "help": {"text": fix, "markdown": f"**Fix:** {fix}"},
                    "defaultConfiguration": {"level": "error"},
                    "properties": {"category": "waivers", "kind": "meta", "tags": ["waivers"]}})
    return out


def _uri(path: Path | None) -> str:
    if path is None:
        return "Pulumi.yaml"
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _lines(path: Path | None, cache: dict[Path, list[str]]) -> list[str]:
    if path is None or not path.is_file():
        return []
    if path not in cache:
        cache[path] = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return cache[path]


def _find(lines: list[str], needles: list[str]) -> int | None:
    for needle in needles:
        for i, text in enumerate(lines, start=1):
            if needle in text:
                return i
    return None


def _location(report: StackReport, f: Finding, cache: dict[Path, list[str]]) -> tuple[Path | None, int]:
    """Where a reviewer should look: the line that constructed the resource; without one, the program line
    naming the resource, else the stack-file line naming it, else the top of the stack file."""
    if f.location is not None:
        path = Path(f.location.file)
        return (path if path.is_absolute() or report.project_root is None else report.project_root / path,
                max(1, f.location.line))
    program, stack = _lines(report.program_file, cache), _lines(report.stack_file, cache)
    # Name parts that identify the resource; the project, stack and tier names appear everywhere.
    common = {report.project, report.stack, report.tier.value, "gantry"}
    parts = sorted({p for p in re.split(r"[-/_.]", f.name) if len(p) >= 3 and p not in common}, key=len,
                   reverse=True)
    line = _find(program, [f'"{f.name}"', f"'{f.name}'"])
    if line is not None:
        return report.program_file, line
    line = _find(stack, [f.name, *parts])
    if line is not None:
        return report.stack_file, line
    # f-string names such as f"shop-{color}": look for the literal prefix.
    prefix = f.name.rsplit("-", 1)[0] + "-" if "-" in f.name else f.name
    if len(prefix) < 3:
        return (report.stack_file, 1) if stack else (report.program_file, 1)
    line = _find(program, [f'f"{prefix}', f"f'{prefix}", f'"{prefix}', f"'{prefix}"])
    if line is not None:
        return report.program_file, line
    if stack:
        # A Gantry stack file: cloud resources come from gantry:cluster, Kubernetes ones from gantry:services.
        section = "gantry:services:" if f.type.startswith("kubernetes:") else "gantry:cluster:"
        return report.stack_file, _find(stack, [section]) or 1
    return report.program_file, 1


def _fingerprint(stack: str, f: Finding) -> str:
    return hashlib.sha256(f"{stack}\0{f.policy}\0{f.urn}".encode()).hexdigest()[:32]


def _check_descriptors(reports: Sequence[StackReport]) -> list[dict[str, object]]:
    """One descriptor per Checkov check that produced a finding, named as Checkov names it."""
    seen: dict[str, Finding] = {}
    for r in reports:
        for f in r.findings:
            if f.source == "checkov" and f.check_name and f.policy not in seen:
                seen[f.policy] = f
    out: list[dict[str, object]] = []
    for cid in sorted(seen):
        name = seen[cid].check_name or cid
        out.append({"id": cid, "name": cid, "shortDescription": {"text": name},
                    "fullDescription": {"text": f"{name} (Checkov {cid}, through the Gantry bridge)"},
                    "help": {"text": f"Checkov {cid}: {name}", "markdown": f"**Checkov {cid}:** {name}"},
                    "defaultConfiguration": {"level": "warning"},
                    "properties": {"category": "checkov", "kind": "checkov", "tags": ["security", "checkov"]}})
    return out


def to_sarif(reports: Sequence[StackReport]) -> dict[str, object]:
    descriptors = _descriptors() + _check_descriptors(reports)
    index = {str(d["id"]): i for i, d in enumerate(descriptors)}
    results: list[dict[str, object]] = []
    notifications: list[dict[str, object]] = []
    cache: dict[Path, list[str]] = {}
    for r in reports:
        for f in r.findings:
            if f.status is FindingStatus.ERROR:
                notifications.append({
                    "level": "error",
                    "message": {"text": f"[{r.stack}] {f.message}"},
                    "descriptor": {"id": f.policy, "index": index.get(f.policy, -1)},
                    "locations": [{"logicalLocations": [{"fullyQualifiedName": f.urn, "kind": "resource"}]}],
                })
                continue
            anchor, line = _location(r, f, cache)
            result: dict[str, object] = {
                "ruleId": f.policy,
                "ruleIndex": index.get(f.policy, -1),
                "level": _level(f.level),
                "message": {"text": f"[{r.stack}] {f.type}::{f.name}: {f.message}"},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(anchor)},
                        "region": {"startLine": line},
                    },
                    "logicalLocations": [{"fullyQualifiedName": f.urn, "name": f.name, "kind": "resource"}],
                }],
                "partialFingerprints": {"gantryFinding/v1": _fingerprint(r.stack, f)},
                "properties": {"stack": r.stack, "tier": r.tier.value, "urn": f.urn, "type": f.type,
                               "status": f.status.value, "enforcementLevel": f.level.value, "source": f.source,
                               **({"checkName": f.check_name} if f.check_name else {}),
                               **({"aliases": list(f.aliases)} if f.aliases else {})},
            }
            if f.status is FindingStatus.WAIVED:
                result["suppressions"] = [{"kind": "external", "status": "accepted",
                                           "justification": f.waiver or "waived"}]
            results.append(result)
        if r.partial:
            where: dict[str, object] = {"logicalLocations": [{"fullyQualifiedName": f"{r.project}/{r.stack}",
                                                               "kind": "module"}]}
            if r.error_location is not None:
                path = Path(r.error_location.file)
                path = path if path.is_absolute() or r.project_root is None else r.project_root / path
                where["physicalLocation"] = {"artifactLocation": {"uri": _uri(path)},
                                             "region": {"startLine": max(1, r.error_location.line)}}
            notifications.append({"level": "error", "message": {"text": f"[{r.stack}] {r.error}"},
                                  "descriptor": {"id": "program-error"}, "locations": [where]})
    return {
        "version": SARIF_VERSION,
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {"driver": {"name": "gantry-check", "semanticVersion": "0.1.0",
                                "rules": descriptors}},
            "invocations": [{"executionSuccessful": not notifications,
                             "toolExecutionNotifications": notifications}],
            "results": results,
            "columnKind": "utf16CodeUnits",
            "properties": {"stacks": [r.stack for r in reports]},
        }],
    }


def render_sarif(reports: Sequence[StackReport]) -> str:
    return json.dumps(to_sarif(reports), indent=2) + "\n"
