"""A structural validator for the parts of SARIF 2.1.0 that GitHub code scanning reads.

Written from the OASIS SARIF 2.1.0 specification's required properties and enums (no network here to
fetch the published JSON schema); returns every problem found, so a test can show them all at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LEVELS = {"none", "note", "warning", "error"}
SUPPRESSION_KINDS = {"inSource", "external"}


def _message(obj: Any, where: str, out: list[str]) -> None:
    if not isinstance(obj, Mapping) or not (isinstance(obj.get("text"), str) or isinstance(obj.get("id"), str)):
        out.append(f"{where}.message must have text or id")


def sarif_problems(doc: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(doc, Mapping):
        return ["the log must be an object"]
    if doc.get("version") != "2.1.0":
        out.append("version must be '2.1.0'")
    if not str(doc.get("$schema", "")).endswith(("sarif-2.1.0.json", "sarif-schema-2.1.0.json")):
        out.append("$schema must point at the 2.1.0 schema")
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        return [*out, "runs must be a non-empty array"]
    for i, run in enumerate(runs):
        w = f"runs[{i}]"
        driver = run.get("tool", {}).get("driver") if isinstance(run.get("tool"), Mapping) else None
        if not isinstance(driver, Mapping) or not isinstance(driver.get("name"), str):
            out.append(f"{w}.tool.driver.name is required")
            continue
        rules = driver.get("rules", [])
        ids = []
        for j, rule in enumerate(rules):
            if not isinstance(rule.get("id"), str):
                out.append(f"{w}.tool.driver.rules[{j}].id is required")
            ids.append(rule.get("id"))
            level = rule.get("defaultConfiguration", {}).get("level", "warning")
            if level not in LEVELS:
                out.append(f"{w}.tool.driver.rules[{j}].defaultConfiguration.level is not a SARIF level")
        if len(set(ids)) != len(ids):
            out.append(f"{w}.tool.driver.rules ids must be unique")
        for j, res in enumerate(run.get("results", [])):
            rw = f"{w}.results[{j}]"
            _message(res.get("message"), rw, out)
            if res.get("ruleId") not in ids:
                out.append(f"{rw}.ruleId must name a driver rule")
            idx = res.get("ruleIndex")
            if idx is not None and (not isinstance(idx, int) or idx >= len(ids) or ids[idx] != res.get("ruleId")):
                out.append(f"{rw}.ruleIndex must point at the rule named by ruleId")
            if res.get("level", "warning") not in LEVELS:
                out.append(f"{rw}.level is not a SARIF level")
            locations = res.get("locations")
            if not isinstance(locations, list) or not locations:
                out.append(f"{rw}.locations must be non-empty for code scanning")
                continue
            for k, loc in enumerate(locations):
                phys = loc.get("physicalLocation", {})
                uri = phys.get("artifactLocation", {}).get("uri")
                if not isinstance(uri, str) or not uri:
                    out.append(f"{rw}.locations[{k}].physicalLocation.artifactLocation.uri is required")
                line = phys.get("region", {}).get("startLine")
                if not isinstance(line, int) or line < 1:
                    out.append(f"{rw}.locations[{k}].physicalLocation.region.startLine must be >= 1")
            for k, sup in enumerate(res.get("suppressions", [])):
                if sup.get("kind") not in SUPPRESSION_KINDS:
                    out.append(f"{rw}.suppressions[{k}].kind must be inSource or external")
        for j, inv in enumerate(run.get("invocations", [])):
            if not isinstance(inv.get("executionSuccessful"), bool):
                out.append(f"{w}.invocations[{j}].executionSuccessful is required")
            for k, note in enumerate(inv.get("toolExecutionNotifications", [])):
                _message(note.get("message"), f"{w}.invocations[{j}].toolExecutionNotifications[{k}]", out)
    return out
