"""Scheduler overhead per step: full rollouts against a FakeTarget with zero wait, timed three ways.

1. ``pure``: the state machine alone (``next_action`` + ``fold`` over in-memory entries), no I/O.
2. ``engine-tmpfs``: the real engine with its SQLite WAL journal and lease on /dev/shm (no disk flush cost).
3. ``engine-disk``: the same on the project's disk (synchronous=FULL: every journal entry is fsynced).

Prints the figures and writes ``bench/results/rollout_overhead.json``. Usage:
    .venv/bin/python bench/rollout_overhead.py [--rollouts 30] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rollout"))  # the fakes

from fakes import FakeAnalysis, FakeTarget

from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine
from infra.rollout.entries import Analysed, Applied, Body, Checkpointed, Decided, Logged, Prepare, Promote, SetWeight
from infra.rollout.journal import SqliteJournal
from infra.rollout.lock import SqliteLock
from infra.rollout.scheduler import ActionKind, Plan, canary_plan, fold, next_action, replay, started
from infra.rollout.seams import RolloutId, StackName, TrafficState, Verdict


def pure_rollout(plan: Plan) -> int:
    """Drive the state machine by hand with typed entries (as read from the journal); returns the number of
    actions."""
    rid = RolloutId("r-bench")
    seq = 1
    first = Logged(seq, rid, 0.0, started(stack=StackName("b"), service="web", image="app:2",
                                          baseline=TrafficState(plan.strategy, "app:1"), plan=plan))
    state = replay([first])
    now = 0.0
    actions = 0
    while True:
        a = next_action(state, now)
        actions += 1
        if a.kind is ActionKind.FINISH:
            return actions
        seq += 1
        body: Body
        if a.kind is ActionKind.CHECKPOINT:
            body = Checkpointed(state={})
        elif a.kind is ActionKind.PREPARE:
            body = Applied(effect=Prepare())
        elif a.kind is ActionKind.APPLY_STEP:
            assert a.plan_step is not None
            body = Applied(effect=SetWeight(weight=a.plan_step.weight, step=a.step))
        elif a.kind is ActionKind.ANALYSE:
            body = Analysed(verdict=Verdict.PASS)
        elif a.kind is ActionKind.DECIDE:
            assert a.decision is not None
            body = Decided(decision=a.decision)
        elif a.kind is ActionKind.PROMOTE:
            body = Applied(effect=Promote())
        elif a.kind is ActionKind.WAIT:
            now = a.until
            continue
        else:
            raise AssertionError(a)
        state = fold(state, [Logged(seq, rid, now, body)])


def engine_rollout(directory: Path, plan: Plan, i: int) -> int:
    db = directory / f"j{i}.db"
    clock = FakeClock()
    journal = SqliteJournal(db)
    engine = Engine(target=FakeTarget(), analysis=FakeAnalysis(), journal=journal, lock=SqliteLock(db, clock),
                    clock=clock)
    outcome = engine.start(stack=StackName("bench"), service="web", image="app:2.0", plan=plan)
    assert outcome.phase.value == "promoted"
    n = len(journal.entries(outcome.rollout_id))
    journal.close()
    return n


def summarise(samples: list[float], steps: int) -> dict[str, float]:
    per_step = sorted(s / steps * 1e3 for s in samples)
    return {"median_ms_per_step": statistics.median(per_step),
            "p95_ms_per_step": per_step[min(len(per_step) - 1, int(0.95 * len(per_step)))],
            "mean_ms_per_step": statistics.fmean(per_step)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=30)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    weights = [round(100 * (i + 1) / args.steps) for i in range(args.steps)]
    plan = canary_plan(weights, interval=0.0, threshold=1)
    results: dict[str, object] = {}

    samples = []
    for _ in range(args.rollouts * 10):
        t = time.perf_counter()
        pure_rollout(plan)
        samples.append(time.perf_counter() - t)
    results["pure"] = summarise(samples, args.steps)

    entries = 0
    for name, base in (("engine-tmpfs", Path("/dev/shm")), ("engine-disk", Path(__file__).resolve().parent)):
        if not base.is_dir():
            continue
        samples = []
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            for i in range(args.rollouts):
                t = time.perf_counter()
                entries = engine_rollout(Path(tmp), plan, i)
                samples.append(time.perf_counter() - t)
        results[name] = {**summarise(samples, args.steps), "journal_entries_per_rollout": entries}

    doc = {"benchmark": "rollout_overhead", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "python": platform.python_version(),
                       "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
           "rollouts": args.rollouts, "steps_per_rollout": args.steps, "wait_seconds": 0.0, "results": results}
    out = Path(__file__).resolve().parent / "results" / "rollout_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"scheduler overhead per step ({args.steps}-step canary, zero wait, {args.rollouts} rollouts)")
    for name, figures in results.items():
        assert isinstance(figures, dict)
        print(f"  {name:13s} median {figures['median_ms_per_step']:.3f} ms  p95 {figures['p95_ms_per_step']:.3f} ms")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
