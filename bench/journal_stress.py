"""Journal stress figures: 8 processes (engines, operators, readers) on one journal.db, writers SIGKILLed at random.

Runs ``tests/rollout/stress.py`` on disk (fsync is real here, unlike the CI test's tmpfs), then prints and
writes ``bench/results/journal_stress.json``: processes, operations, kills, lost writes, aborts
acknowledged and honoured, integrity result, with the machine's load average.
Usage: ``.venv/bin/python bench/journal_stress.py [min_operations]``
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rollout"))  # the stress and its fakes

from stress import run


def main() -> None:
    min_operations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        result = run(Path(tmp) / "run", engines=3, operators=3, readers=2, min_operations=min_operations,
                     min_kills=20, max_seconds=120.0, seed=1)
    doc = {"benchmark": "journal_stress", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "command": f".venv/bin/python bench/journal_stress.py {min_operations}",
           "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                       "loadavg_before": [round(x, 2) for x in load_before],
                       "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
           **result.as_json()}
    out = Path(__file__).resolve().parent / "results" / "journal_stress.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"processes {result.processes}, operations {result.operations} (writes {result.writes_acknowledged}, "
          f"operator {result.operator_acknowledged}, refused {result.operator_refused}, reads {result.reads}), "
          f"kills {result.kills}, lost writes {result.lost_writes}, aborts acknowledged {result.aborts_acknowledged} "
          f"/ not honoured {result.aborts_not_honoured}, rollouts {result.phases}, integrity {result.integrity}, "
          f"{result.seconds}s, load {doc['machine']['loadavg_after']}")
    for problem in result.problems:
        print(f"  PROBLEM: {problem}")
    print(f"wrote {out}")
    if result.problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
