"""Figures for issue 15: findings per bridge fixture twin, by source (Gantry's rules, Checkov), at the prod tier.

Run from the repository root: ``.venv/bin/python bench/bridge_fixtures.py``. Renders every program in
tests/fixtures/bridge, evaluates Gantry's pack, runs Checkov once over all of them through the bridge, and
writes bench/results/bridge_fixtures.json (with the load average).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "bridge"
RESULTS = ROOT / "bench" / "results" / "bridge_fixtures.json"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(FIXTURES))
    from infra.render import render_callable
    from policies.bridge.findings import merge
    from policies.bridge.runner import CheckovSession
    from policies.bridge.translate import nodes_from_render, translate
    from policies.config import build_settings, load_policy_config
    from policies.engine import evaluate, resources_from_render
    from policies.model import TierName

    load = os.getloadavg()[0]
    config = load_policy_config()
    jobs = []
    for path in sorted(FIXTURES.glob("*.py")):
        module = importlib.import_module(path.stem)
        for variant in ("noncompliant", "compliant"):
            result = render_callable(getattr(module, variant), project="bridge", stack="prod")
            jobs.append((path.stem, variant, result, translate(nodes_from_render(result.resources))))
    with CheckovSession() as session:
        scans = session.scan_many([j[3] for j in jobs])
    rows = []
    today = dt.date.today()
    for (fixture, variant, result, bundle), scan in zip(jobs, scans, strict=True):
        views = [v for v in resources_from_render(result) if v.type != "pulumi:pulumi:Stack"]
        gantry = evaluate(views, build_settings(config, TierName.PROD), config.levels(TierName.PROD), today=today)
        merged, summary = merge(gantry, scan, bundle, views, lambda c: config.check_level(c, TierName.PROD), [], {},
                                today)
        rows.append({
            "fixture": fixture, "variant": variant, "resources": len(views),
            "gantry": sum(1 for f in merged if f.source == "gantry"),
            "checkov": sum(1 for f in merged if f.source == "checkov"),
            "mandatory": sum(1 for f in merged if f.blocking),
            "aliased": summary.aliased, "checkovPassed": summary.passed, "references": bundle.references,
            "ids": sorted(f"{f.label}@{f.name}" for f in merged), "unmapped": summary.unmapped,
            "skippedTypes": summary.skipped_types,
        })
        print(f"{fixture:15} {variant:13} gantry {rows[-1]['gantry']:2}  checkov {rows[-1]['checkov']:2}  "
              f"(aliased {summary.aliased}, passed {summary.passed}, references {bundle.references})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"loadAverageAtStart": round(load, 2), "tier": "prod",
                                   "checkovVersion": scans[0].version if scans else None,
                                   "fixtures": rows}, indent=2) + "\n")
    print(f"load average {load:.2f}; wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
