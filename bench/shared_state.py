"""Shared rollout state figures: journal write latency, 20 concurrent rollouts, lease takeover after a kill.

Run: ``.venv/bin/python bench/shared_state.py`` -> bench/results/shared_state.json (each figure with the
machine's load average). DynamoDB and S3 are moto's, served on 127.0.0.1 by ``tests/rollout/moto_state``
(one request at a time, see ``moto_serial.py``); AWS credentials are dummy values set here only.

1. Journal write latency: the engine's append (lease held, so every DynamoDB write is a fenced
   transaction) on SQLite (``synchronous=FULL``, on disk) and on moto's DynamoDB, p50 and p99.
2. 20 concurrent rollouts of 20 services (each its own stack, a ``JsonFileTarget`` each) with zero wait,
   one process each, on DynamoDB: every acknowledged entry must be in the journal, every rollout promoted
   and verified, and a rival on another runner trying to take each stack's lease all along must never get it.
3. Lease takeover after SIGKILL: a holder heartbeats, is killed at a random moment; another runner polls
   every 0.1 s until it holds the stack (bounded by the lease ttl), and a runner on the same machine (dead
   pid, taken over at once).
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "rollout"))

from fakes import FakeAnalysis, JsonFileTarget  # noqa: E402
from stress import AckJournal, AckLog  # noqa: E402

from components.spec import Strategy  # noqa: E402
from infra.rollout.clock import SystemClock  # noqa: E402
from infra.rollout.engine import Engine  # noqa: E402
from infra.rollout.entries import read  # noqa: E402
from infra.rollout.errors import StackLocked  # noqa: E402
from infra.rollout.journal import EntryKind, RolloutRecord, SqliteJournal, StateJournal  # noqa: E402
from infra.rollout.scheduler import canary_plan, mismatches, replay  # noqa: E402
from infra.rollout.seams import Phase, RolloutId, StackName  # noqa: E402
from infra.rollout.state import open_state  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "shared_state.json"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- 1. write latency


def write_latency(journal: StateJournal, stack: str, n: int) -> dict[str, object]:
    clock = SystemClock()
    lock = journal.lease_lock(clock)
    rid = RolloutId(f"r-latency-{os.getpid()}-{random.getrandbits(32):08x}")
    lease = lock.acquire(StackName(stack), rid)
    now = time.time()
    journal.create(RolloutRecord(rid, StackName(stack), "web", "app:2", Strategy.CANARY, Phase.PENDING, now, now),
                   {"plan": {}})
    samples: list[float] = []
    before = load()
    for i in range(n):
        t = time.perf_counter()
        journal.append(rid, EntryKind.HOOK, {"i": i, "detail": "x" * 200}, time.time())
        samples.append((time.perf_counter() - t) * 1000.0)
    lock.release(lease)
    return {"writes": n, "p50_ms": round(pct(samples, 0.5), 2), "p99_ms": round(pct(samples, 0.99), 2),
            "mean_ms": round(statistics.fmean(samples), 2), "loadavg_before": before, "loadavg_after": load()}


# --------------------------------------------------------------------------- 2. concurrent rollouts


def rollout_child(root: Path, url: str, index: int) -> None:
    """One process: a rival thread tries to take the stack all along while this process rolls it out."""
    stack = StackName(f"svc-{index}")
    log = AckLog(root / f"acks-{index}.log")
    journal = AckJournal(open_state(url, root), log)
    clock = SystemClock()
    target = JsonFileTarget(root / f"target-{index}.json", Strategy.CANARY, "app:1")
    engine = Engine(target=target, analysis=FakeAnalysis(), journal=journal, lock=journal.lease_lock(clock),
                    clock=clock, poll=0.05)
    rival = open_state(url, root).lease_lock(clock, host=f"rival-{index}")  # another runner: only expiry lets it in
    stolen: list[str] = []
    tries = [0]
    done = threading.Event()
    running = threading.Event()

    def rival_loop() -> None:
        running.wait()
        while not done.is_set():
            tries[0] += 1
            try:
                lease = rival.acquire(stack, RolloutId(f"r-rival-{index}"))
            except StackLocked:
                time.sleep(0.02)
                continue
            if not done.is_set():
                stolen.append(lease.rollout_id)
            rival.release(lease)

    thread = threading.Thread(target=rival_loop, daemon=True)
    thread.start()
    (root / f"go-{index}").touch()
    while not (root / "start").exists():
        time.sleep(0.01)
    plan = canary_plan([10, 25, 50, 100], interval=0.0, threshold=1)
    t = time.perf_counter()

    class Started:
        def on_entry(self, state: object, entry: object) -> None:
            running.set()  # the lease is held from the first entry on

        def on_wait(self, state: object, until: float, now: float) -> None:
            return

    engine.observer = Started()
    outcome = engine.start(stack=stack, service=f"web-{index}", image=f"app:2.{index}", plan=plan)
    seconds = time.perf_counter() - t
    done.set()
    thread.join(timeout=10)
    (root / f"result-{index}.json").write_text(json.dumps({
        "rollout": outcome.rollout_id, "phase": outcome.phase.value, "verified": outcome.verified,
        "seconds": seconds, "stolen": stolen, "rival_tries": tries[0]}))


def concurrent_rollouts(url: str, n: int = 20) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="gantry-shared-"))
    before = load()
    procs = [subprocess.Popen([sys.executable, __file__, "rollout", str(root), url, str(i)],
                              stderr=open(root / f"err-{i}.log", "wb")) for i in range(n)]  # noqa: SIM115
    while not all((root / f"go-{i}").exists() for i in range(n)):  # every process ready (imports done)
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.05)
    t = time.perf_counter()
    (root / "start").touch()
    codes = [p.wait(timeout=900) for p in procs]
    wall = time.perf_counter() - t
    results = [json.loads((root / f"result-{i}.json").read_text()) for i in range(n)
               if (root / f"result-{i}.json").exists()]
    journal = open_state(url, root)
    lost = 0
    acked = 0
    target_mismatches = 0
    for i in range(n):
        path = root / f"acks-{i}.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            ack = json.loads(line)
            acked += 1
            found = {(e.seq, e.kind.value) for e in journal.entries(RolloutId(str(ack["rollout"])))}
            lost += (int(ack["seq"]), ack["kind"]) not in found
    for i, r in enumerate(results):
        state = replay(read(journal, RolloutId(r["rollout"])))
        live = JsonFileTarget(root / f"target-{i}.json", Strategy.CANARY, "app:1").current()
        target_mismatches += bool(mismatches(state, live))
    seconds = [float(r["seconds"]) for r in results]
    return {
        "rollouts": n, "processes": n, "exit_codes_nonzero": sum(1 for c in codes if c != 0),
        "promoted": sum(1 for r in results if r["phase"] == "promoted"),
        "verified": sum(1 for r in results if r["verified"]),
        "entries_acknowledged": acked, "lost_entries": lost,
        "double_leases": sum(len(r["stolen"]) for r in results),
        "rival_attempts_refused": sum(int(r["rival_tries"]) - len(r["stolen"]) for r in results),
        "target_mismatches": target_mismatches,
        "wall_seconds": round(wall, 2), "rollout_seconds_p50": round(pct(seconds, 0.5), 2) if seconds else None,
        "rollout_seconds_max": round(max(seconds), 2) if seconds else None,
        "loadavg_before": before, "loadavg_after": load()}


# --------------------------------------------------------------------------- 3. takeover after a kill


def hold_child(url: str, ttl: float, root: str) -> None:
    """Take the stack's lease and keep it alive with the engine's heartbeat thread until killed."""
    from infra.rollout.engine import Heartbeat

    journal = open_state(url, Path(root))
    lock = journal.lease_lock(SystemClock(), ttl=ttl)
    lease = lock.acquire(StackName("takeover"), RolloutId(f"r-hold-{os.getpid()}"))
    Heartbeat(lock, lease, ttl / 3).start()
    print("held", flush=True)
    while True:
        time.sleep(3600)


def takeover(url: str, ttl: float, tries: int, *, same_machine: bool) -> dict[str, object]:
    root = tempfile.mkdtemp(prefix="gantry-takeover-")
    rng = random.Random(7)
    times: list[float] = []
    before = load()
    for i in range(tries):
        env = {**os.environ, "GANTRY_RUNNER": "runner-a"}
        proc = subprocess.Popen([sys.executable, __file__, "hold", url, str(ttl), root], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        time.sleep(rng.uniform(0.0, ttl / 3))  # the kill lands anywhere in the heartbeat cycle
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        proc.stdout.close()
        lock = open_state(url, Path(root)).lease_lock(SystemClock(), ttl=ttl,
                                                      host="runner-a" if same_machine else "runner-b")
        while True:
            try:
                lease = lock.acquire(StackName("takeover"), RolloutId(f"r-next-{i}"))
            except StackLocked:
                time.sleep(0.1)
                continue
            times.append(time.monotonic() - killed_at)
            lock.release(lease)
            break
    return {"ttl_seconds": ttl, "tries": tries, "poll_seconds": 0.1, "min_s": round(min(times), 2),
            "median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2),
            "loadavg_before": before, "loadavg_after": load()}


# --------------------------------------------------------------------------- main


def main() -> None:
    from moto_state import aws_env, moto_server

    out: dict[str, object] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as d, moto_server(Path(d) / "moto.log") as moto, \
            aws_env(moto):
        project = Path(d) / "project"
        project.mkdir()
        sqlite = SqliteJournal(project / ".gantry" / "journal.db")
        out["write_latency_sqlite"] = write_latency(sqlite, "bench", 500)
        sqlite.close()
        out["write_latency_dynamodb_moto"] = write_latency(open_state(moto.state_url(), project), "bench", 500)
        print(json.dumps({k: out[k] for k in ("write_latency_sqlite", "write_latency_dynamodb_moto")}, indent=1))
        out["concurrent_rollouts_dynamodb_moto"] = concurrent_rollouts(moto.state_url(), 20)
        print(json.dumps(out["concurrent_rollouts_dynamodb_moto"], indent=1))
        url = moto.state_url()
        out["takeover_other_runner"] = takeover(url, 6.0, 5, same_machine=False)
        out["takeover_same_machine"] = takeover(url, 6.0, 5, same_machine=True)
        print(json.dumps({k: out[k] for k in ("takeover_other_runner", "takeover_same_machine")}, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rollout":
        rollout_child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "hold":
        hold_child(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    else:
        main()
