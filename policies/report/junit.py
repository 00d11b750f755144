"""The JUnit XML report for CI systems (GitLab test reports): one suite per stack, one case per rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from policies.engine import Finding, FindingStatus, StackReport
from policies.model import Level
from policies.pack import RULES


def _where(f: Finding) -> str:
    return f"{f.location}: " if f.location else ""


def render_junit(reports: Sequence[StackReport]) -> str:
    root = ET.Element("testsuites", name="gantry check")
    total_fail = total_err = total_cases = 0
    for r in reports:
        suite = ET.SubElement(root, "testsuite", name=f"{r.project}/{r.stack}")
        failures = errors = cases = 0
        ids: list[str] = [rule.id for rule in RULES if r.levels.get(rule.id, rule.level) is not Level.DISABLED]
        ids += sorted({f.policy for f in r.findings} - set(ids))
        for policy in ids:
            mine = [f for f in r.findings if f.policy == policy]
            cases += 1
            checkov = next((f.check_name for f in mine if f.check_name), None)
            aliases = sorted({a for f in mine for a in f.aliases})
            label = f"{policy}: {checkov}" if checkov else f"{policy} ({', '.join(aliases)})" if aliases else policy
            case = ET.SubElement(suite, "testcase", classname=f"{r.stack}.{policy}", name=label)
            blocking = [f for f in mine if f.blocking and f.status is FindingStatus.VIOLATION]
            broken = [f for f in mine if f.status is FindingStatus.ERROR and f.level is Level.MANDATORY]
            if blocking:
                failures += 1
                el = ET.SubElement(case, "failure", message=f"{len(blocking)} mandatory violation(s)",
                                   type="mandatory")
                el.text = "\n".join(f"{_where(f)}{f.urn}: {f.message}" for f in blocking)
            elif broken:
                errors += 1
                el = ET.SubElement(case, "error", message=broken[0].message, type="rule-error")
                el.text = "\n".join(f"{_where(f)}{f.urn}: {f.message}" for f in broken)
            rest = [f for f in mine if f not in blocking and f not in broken]
            if rest:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"[{f.status.value}/{f.level.value}] {_where(f)}{f.urn}: {f.message}"
                                     + (f" (waived: {f.waiver})" if f.waiver else "") for f in rest)
        if r.partial:
            cases += 1
            errors += 1
            case = ET.SubElement(suite, "testcase", classname=f"{r.stack}.program", name="program")
            el = ET.SubElement(case, "error", message=r.error or "the program raised", type="partial-graph")
            el.text = r.error_traceback or r.error or ""
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("time", f"{r.seconds:.3f}")
        total_fail, total_err, total_cases = total_fail + failures, total_err + errors, total_cases + cases
    root.set("tests", str(total_cases))
    root.set("failures", str(total_fail))
    root.set("errors", str(total_err))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
