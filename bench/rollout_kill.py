"""Crash drill figures: SIGKILL a rollout at every journal append and after every effect inside every target
operation, resume it, and count the points that end serving and consistent with the journal.

Three drills, four scenarios each (canary and blue/green, promoting and rolling back):
- journal: before and after every journal append (JsonFileTarget, forked engine);
- haproxy: after every effect inside HaproxyTarget's operations, killing the real ``gantry rollout start``
  against a real sandbox (HAProxy, Prometheus, demo processes on 127.0.0.1), then ``gantry rollout
  resume`` and a check of what users see (sampled requests through HAProxy, servers vs state file);
- pulumi: after every effect inside PulumiStackTarget's operations, on the fake Automation API.
Prints the counts and writes ``bench/results/rollout_kill.json`` with the load average.
Usage: ``.venv/bin/python bench/rollout_kill.py [--only journal,haproxy,pulumi] [--scenarios a,b]``
(``--scenarios`` reruns some haproxy scenarios and merges them into the last full run's JSON.)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The fake Automation API (and its file-backed wrapper) the pulumi drill runs on.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rollout"))

from drills import (
    SANDBOX_SCENARIOS,
    SCENARIOS,
    PointResult,
    SandboxDrill,
    run_all,
    run_engine_drill,
    run_sandbox_drill,
)


def op_figures(results: list[PointResult], seconds: float) -> dict[str, object]:
    per: dict[str, dict[str, object]] = {}
    for name in dict.fromkeys(r.scenario for r in results):
        rs = [r for r in results if r.scenario == name]
        per[name] = {"points": len(rs), "killed": sum(r.killed for r in rs),
                     "consistent": sum(r.consistent for r in rs),
                     "failures": [{"point": r.point, "problems": list(r.problems)} for r in rs if not r.consistent]}
    operations = sorted({r.point.split(".")[2] for r in results})
    return {"points_tried": len(results), "points_consistent": sum(r.consistent for r in results),
            "operations": operations, "seconds": round(seconds, 1), "scenarios": per}


def in_operation(which: str, names: list[str] | None = None) -> dict[str, object]:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if which == "pulumi":
            from pulumi_drill import make_pulumi_target

            results = run_engine_drill(Path(tmp), make_pulumi_target, "pulumi")
        else:
            drill = SandboxDrill(Path(tmp) / "proj")
            drill.setup()
            try:
                chosen = [sc for sc in SANDBOX_SCENARIOS if names is None or sc.name in names]
                results = run_sandbox_drill(drill, chosen, on_result=lambda r: print(
                    f"    {r.point:55s} {'ok' if r.consistent else 'INCONSISTENT ' + '; '.join(r.problems)}",
                    flush=True))
            finally:
                drill.teardown()
    return op_figures(results, time.perf_counter() - t)


def merged(out: Path, fresh: dict[str, object]) -> dict[str, object]:
    """``--scenarios``: replace those scenarios' figures in the last full run's haproxy drill, recount totals."""
    if not out.exists():
        return fresh
    old = json.loads(out.read_text()).get("drills", {}).get("haproxy")
    if not isinstance(old, dict):
        return fresh
    scenarios = {**old["scenarios"], **fresh["scenarios"]}  # type: ignore[dict-item]
    return {**old, "scenarios": scenarios,
            "points_tried": sum(v["points"] for v in scenarios.values()),
            "points_consistent": sum(v["consistent"] for v in scenarios.values()),
            "seconds": {"last_full_run": old.get("seconds"), "rerun": fresh["seconds"]},
            "operations": sorted(set(old.get("operations", [])) | set(fresh["operations"]))}  # type: ignore[call-overload]


def journal_drill() -> dict[str, object]:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_all(Path(tmp), SCENARIOS)
    elapsed = time.perf_counter() - t
    per: dict[str, dict[str, object]] = {}
    for sc in SCENARIOS:
        rs = [r for r in results if r.scenario == sc.name]
        outcomes = Counter(r.final_phase.value if r.final_phase else "not-started" for r in rs)
        per[sc.name] = {"kill_points": len(rs), "killed": sum(r.killed for r in rs),
                        "consistent": sum(r.consistent for r in rs), "resumed_to": dict(outcomes),
                        "failures": [{"point": r.point, "problems": list(r.problems)} for r in rs
                                     if not r.consistent]}
    return {"kill_points": len(results), "consistent": sum(r.consistent for r in results),
            "seconds": round(elapsed, 2), "scenarios": per}


def main() -> None:
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else ["journal", "haproxy",
                                                                                           "pulumi"]
    load_before = os.getloadavg()
    drills: dict[str, dict[str, object]] = {}
    if "journal" in only:
        drills["journal"] = journal_drill()
        print(f"journal drill: {drills['journal']['consistent']}/{drills['journal']['kill_points']} consistent")
    out = Path(__file__).resolve().parent / "results" / "rollout_kill.json"
    names = sys.argv[sys.argv.index("--scenarios") + 1].split(",") if "--scenarios" in sys.argv else None
    for which in ("pulumi", "haproxy"):
        if which in only:
            print(f"{which} in-operation drill:", flush=True)
            drills[which] = in_operation(which, names if which == "haproxy" else None)
            if which == "haproxy" and names is not None:
                drills[which] = merged(out, drills[which])
            print(f"  {which}: points tried {drills[which]['points_tried']}, consistent "
                  f"{drills[which]['points_consistent']} ({drills[which]['seconds']}s)", flush=True)
    doc: dict[str, object] = {"benchmark": "rollout_kill", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                       "loadavg_before": [round(x, 2) for x in load_before],
                       "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
           "command": " ".join([".venv/bin/python", "bench/rollout_kill.py", *sys.argv[1:]]),
           "drills": drills}
    if "journal" in drills:  # the journal drill's figures stay where earlier readers found them
        doc.update(kill_points=drills["journal"]["kill_points"], consistent=drills["journal"]["consistent"])
    if names is not None and out.exists():  # a rerun of some haproxy scenarios keeps the other drills' figures
        previous = json.loads(out.read_text())
        drills = {**previous.get("drills", {}), **drills}
        doc["drills"] = drills
        doc["rerun"] = {"scenarios": names, "previous_date": previous.get("date")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
