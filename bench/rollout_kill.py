"""Crash drill figures: SIGKILL a rollout before and after every journal append, resume, and count consistency.

Four scenarios (canary and blue/green, promoting and rolling back). Prints the counts and writes
``bench/results/rollout_kill.json``. Usage: ``.venv/bin/python bench/rollout_kill.py``
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

from infra.rollout.drills import SCENARIOS, run_all


def main() -> None:
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
    total = len(results)
    consistent = sum(r.consistent for r in results)
    doc = {"benchmark": "rollout_kill", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
           "kill_points": total, "consistent": consistent, "seconds": round(elapsed, 2), "scenarios": per}
    out = Path(__file__).resolve().parent / "results" / "rollout_kill.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for name, figures in per.items():
        print(f"  {name:28s} {figures['consistent']}/{figures['kill_points']} consistent; resumed to "
              f"{figures['resumed_to']}")
    print(f"kill points tried: {total}; resumed consistently: {consistent}  ({elapsed:.1f}s)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
