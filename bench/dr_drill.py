"""DR drill benchmark: ``gantry dr drill --stack local`` N times on one two-region sandbox; median and max RTO.

Run: ``.venv/bin/python bench/dr_drill.py`` (10 runs, 200 rps) or ``--runs N --rate R``.

Each run is the real drill (``infra.dr.drill``): 200 rps of open-loop load through HAProxy on 127.0.0.1,
the primary region frozen (SIGSTOP), the DR engine detecting it, scaling the standby, switching HAProxy's
region map, verifying, checking the stand-in replication-lag gauge on Prometheus, then failing back. The
sandbox (a throwaway project with the shipped local stack) is started once and reused: every drill ends with
traffic back on the primary and the standby at its warm size. Reported: time to detect, time to switch, RTO
(fault to 99% success again, 0.25 s resolution), requests lost during and after the switch, the lag check,
each with the machine's load average. Results go to ``bench/results/dr_drill.json``; goals: RTO <= 30 s,
no request lost after the switch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.dr import drill  # noqa: E402
from infra.sandbox import lifecycle  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dr_drill.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds on the standby before failback")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gantry-dr-bench-"))
    project = tmp / "proj"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "stacks" / "Pulumi.local.yaml", project / "stacks" / "Pulumi.local.yaml")
    runs: list[dict[str, object]] = []
    try:
        lifecycle.up(project, "local", regions=2)
        for i in range(args.runs):
            load_before = os.getloadavg()
            report = drill.run(project, "local", rate=args.rate, hold=args.hold,
                               chart_path=tmp / f"run{i}.png" if i else args.out.with_suffix(".png"))
            row = {
                "run": i, "ok": report.ok, "detect_s": report.detect_s, "switch_s": report.switch_s,
                "detect_to_switch_s": report.detect_to_switch_s, "rto_s": report.rto_s,
                "engine_rto_s": report.engine_rto_s, "requests": report.requests,
                "lost_during_switch": report.lost_during_switch, "lost_after_switch": report.lost_after_switch,
                "lost_during_failback": report.lost_during_failback,
                "replication": (report.replication or {}).get("status"),
                "replication_lag": (report.replication or {}).get("lag"),
                "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            }
            runs.append(row)
            print(json.dumps(row), flush=True)
            time.sleep(1.0)
    finally:
        lifecycle.down(project)
        shutil.rmtree(tmp, ignore_errors=True)
    rtos = [float(r["rto_s"]) for r in runs if isinstance(r["rto_s"], int | float)]
    detects = [float(r["detect_s"]) for r in runs if isinstance(r["detect_s"], int | float)]
    switches = [float(r["switch_s"]) for r in runs if isinstance(r["switch_s"], int | float)]
    lost_after = sum(int(str(r["lost_after_switch"])) for r in runs)
    summary = {
        "runs": len(runs), "rate_rps": args.rate, "recovered": len(rtos),
        "rto_median_s": statistics.median(rtos) if rtos else None, "rto_max_s": max(rtos) if rtos else None,
        "detect_median_s": statistics.median(detects) if detects else None,
        "switch_median_s": statistics.median(switches) if switches else None,
        "lost_during_switch_median": statistics.median([int(str(r["lost_during_switch"])) for r in runs]),
        "lost_after_switch_total": lost_after,
        "replication_passed": sum(1 for r in runs if r["replication"] == "pass"),
        "loadavg": os.getloadavg(),
    }
    doc = {
        "benchmark": "dr_drill", "command": f"python bench/dr_drill.py --runs {args.runs} --rate {args.rate:g}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "summary": summary,
        "targets": {
            "rto_max_s": {"value": summary["rto_max_s"], "goal": 30.0,
                          "met": bool(rtos) and len(rtos) == len(runs) and max(rtos) <= 30.0},
            "lost_after_switch_total": {"value": lost_after, "goal": 0, "met": lost_after == 0},
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    met = [bool(t["met"]) for t in (doc["targets"] if isinstance(doc["targets"], dict) else {}).values()]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
