"""The DR engine: failover and failback as journaled, locked, resumable step sequences over a ``DrTarget``.

Called by ``gantry dr failover|failback|status`` and by the sandbox drill. The seed's procedure, in the
issue's order: confirm the primary is down (refuse if healthy unless forced), scale the standby up, wait
until it is healthy, switch traffic, verify the new region, check replication lag, record the RTO.
Failback reverses it once the primary is healthy again.

Every step is written to the rollout journal (``INTENT`` before its effect, ``APPLIED`` after) under a
record of its own (stack ``dr:<primary>``), with the leases of every stack involved held, as rollouts do.
Every step is idempotent (a config value written, an ``up``, a switch to a named region, probes), so a run
killed anywhere resumes by replaying the journal and re-running the first step without ``APPLIED``:
running the same command again resumes it. Exit codes follow ``gantry rollout``: 0 done, 1 refused (nothing
changed), 2 input, 3 locked, 4 failed midway (an operator must act; ``status`` says where).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, cast

from components.spec import Strategy
from infra.dr.settings import DrSettings, Role
from infra.errors import ExitCode, GantryError, InputError
from infra.rollout.errors import MetricsUnavailable, StackLocked
from infra.rollout.journal import Entry, EntryKind, Journal, RolloutRecord
from infra.rollout.lock import Lease, Lock, iso
from infra.rollout.seams import Clock, JSONObject, JSONValue, Phase, RolloutId, StackName

_USERINFO = re.compile(r"://[^/@\s]+@")


class Operation(StrEnum):
    FAILOVER = "failover"
    FAILBACK = "failback"


STEPS: Mapping[Operation, tuple[str, ...]] = {
    Operation.FAILOVER: ("confirm", "scale", "wait", "switch", "verify", "replication", "record"),
    Operation.FAILBACK: ("confirm", "switch", "verify", "scale", "record"),
}
"""The steps of each operation, in order; the journal's APPLIED entries say which are done."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RegionHealth:
    """One probe of every health check against one region."""

    role: Role
    checks: tuple[CheckResult, ...]

    @property
    def healthy(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_json(self) -> JSONObject:
        return {"role": self.role, "healthy": self.healthy,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


class DrTarget(Protocol):
    """What failover acts on: probes per region, the standby's size, the traffic switch, replication lag.

    ``scale`` and ``switch`` must be idempotent: a resumed run repeats the step its kill interrupted.
    """

    def probe(self, role: Role) -> RegionHealth: ...

    def scale(self, size: int) -> None:
        """Set the standby's replicas per service (a config write) and apply it (``up``)."""

    def switch(self, role: Role) -> None:
        """Point traffic at ``role``'s region."""

    def active(self) -> Role:
        """Where traffic goes now, read from the live system."""

    def replication_lag(self) -> float | None:
        """The standby's replication lag in seconds; None when no check is configured."""


class DrFailed(GantryError):
    """A failover or failback stopped midway (standby not healthy, verification failed): an operator must act."""

    exit_code = ExitCode.OPERATOR


Observer = Callable[[str, JSONObject], None]


@dataclass(slots=True)
class Outcome:
    """How an operation ended, with every measured time (epoch seconds of the engine's clock)."""

    id: RolloutId
    operation: Operation
    result: str
    """done, refused or failed."""
    message: str
    times: dict[str, float] = field(default_factory=dict)
    replication: JSONObject | None = None
    rto_seconds: float | None = None
    rto_goal_seconds: float = 0.0
    resumed: bool = False

    @property
    def exit_code(self) -> ExitCode:
        return {"done": ExitCode.OK, "refused": ExitCode.FAILED}.get(self.result, ExitCode.OPERATOR)

    def as_json(self) -> JSONObject:
        return {"id": self.id, "operation": self.operation.value, "result": self.result, "message": self.message,
                "times": dict(self.times), "replication": self.replication, "rtoSeconds": self.rto_seconds,
                "rtoGoalSeconds": self.rto_goal_seconds, "resumed": self.resumed, "exitCode": int(self.exit_code)}


def journal_stack(settings: DrSettings) -> StackName:
    """The journal's stack key for a primary/standby pair: never a real stack, so rollouts never replay it."""
    return StackName(f"dr:{settings.primary}")


def new_id(op: Operation, now: float) -> RolloutId:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return RolloutId(f"dr-{op.value}-{stamp}-{secrets.token_hex(3)}")


@dataclass(slots=True)
class _Run:
    id: RolloutId
    op: Operation
    done: dict[str, JSONObject]
    started: JSONObject
    resumed: bool


class _LeaseKeeper(threading.Thread):
    """Renews the leases on wall-clock time while a step blocks (a `pulumi up` can take minutes)."""

    def __init__(self, engine: DrEngine, every: float) -> None:
        super().__init__(name="gantry-dr-leases", daemon=True)
        self.engine, self.every = engine, every
        self.lost: StackLocked | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            try:
                self.engine._renew()
            except StackLocked as exc:
                self.lost = exc
                return
            except Exception:  # a busy database: try again at the next beat, the lease has ttl to spare
                continue

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5.0)


class DrEngine:
    """Runs failover and failback on one primary/standby pair."""

    def __init__(self, settings: DrSettings, target: DrTarget, journal: Journal, lock: Lock, clock: Clock,
                 *, observer: Observer | None = None) -> None:
        self.settings = settings
        self.target = target
        self.journal = journal
        self.lock = lock
        self.clock = clock
        self.observer = observer
        self._leases: list[Lease] = []
        self._last_beat = 0.0
        self._lease_mutex = threading.Lock()
        self._keeper: _LeaseKeeper | None = None

    # ------------------------------------------------------------------ entry points

    def failover(self, *, force: bool = False, fault_at: float | None = None) -> Outcome:
        """Fail over to the standby (or resume an unfinished failover). ``fault_at``: when a drill injected it."""
        return self._start(Operation.FAILOVER, force=force, fault_at=fault_at)

    def failback(self, *, force: bool = False) -> Outcome:
        """Return traffic to the primary once it is healthy (or resume an unfinished failback)."""
        return self._start(Operation.FAILBACK, force=force, fault_at=None)

    def unfinished(self) -> RolloutRecord | None:
        active = self.journal.active(journal_stack(self.settings))
        return active[0] if active else None

    def history(self, limit: int = 10) -> list[RolloutRecord]:
        return self.journal.history(journal_stack(self.settings), limit=limit)

    # ------------------------------------------------------------------ plumbing

    def _emit(self, event: str, data: JSONObject) -> None:
        if self.observer is not None:
            self.observer(event, data)

    def _stacks(self) -> list[StackName]:
        return sorted({StackName(s) for s in (self.settings.primary, self.settings.standby, self.settings.traffic)})

    def _acquire(self, rid: RolloutId) -> None:
        # Sorted order: two DR runs (or a DR run and rollouts) never take the same pair crosswise.
        try:
            for stack in self._stacks():
                self._leases.append(self.lock.acquire(stack, rid))
        except BaseException:
            self._release()
            raise
        self._last_beat = self.clock.now()
        self._keeper = _LeaseKeeper(self, self.lock.ttl / 3)
        self._keeper.start()

    def _release(self) -> None:
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
        while self._leases:
            self.lock.release(self._leases.pop())

    def _renew(self) -> None:
        with self._lease_mutex:
            self._leases = [self.lock.heartbeat(lease) for lease in self._leases]

    def _beat(self) -> None:
        if self._keeper is not None and self._keeper.lost is not None:
            raise self._keeper.lost  # someone else holds a stack now: acting on it would race them
        if self.clock.now() - self._last_beat >= self.lock.ttl / 3:
            self._renew()
            self._last_beat = self.clock.now()

    def _sleep(self, seconds: float) -> None:
        # Waits are sliced so the leases stay fresh however long a region takes.
        end = self.clock.now() + seconds
        while (left := end - self.clock.now()) > 0:
            self.clock.sleep(min(left, max(self.lock.ttl / 3, 0.05)))
            self._beat()

    def _append(self, run: _Run, kind: EntryKind, data: JSONObject, phase: Phase | None = None) -> Entry:
        entry = self.journal.append(run.id, kind, data, self.clock.now(), phase=phase)
        self._emit(kind.value, {"id": run.id, **data})
        return entry

    def _start(self, op: Operation, *, force: bool, fault_at: float | None) -> Outcome:
        pending = self.unfinished()
        if pending is not None:
            other = pending.image
            if other != op.value:
                raise StackLocked(journal_stack(self.settings), f"unfinished {other} {pending.id} (run `gantry dr "
                                  f"{other}` to finish it first)", "this journal", None, None,
                                  rollout_id=pending.id)
            return self._resume(pending.id)
        now = self.clock.now()
        rid = new_id(op, now)
        self._acquire(rid)
        try:
            # Preflight: a target that cannot even be read (sandbox down, stack missing) is an input error
            # (exit 2) with nothing journaled, not an operation stopped midway.
            before = self.target.active()
            started: dict[str, JSONValue] = {
                "operation": op.value, "activeBefore": before, "primary": self.settings.primary,
                "standby": self.settings.standby, "traffic": self.settings.traffic, "force": force, "startedAt": now,
                "faultAt": fault_at, "rto": self.settings.rto, "warmSize": self.settings.warm_size,
                "activeSize": self.settings.active_size,
            }
            record = RolloutRecord(rid, journal_stack(self.settings), "dr", op.value, Strategy.BLUEGREEN,
                                   Phase.PENDING, now, now)
            self.journal.create(record, started)
            self._emit("started", {"id": rid, **started})
            run = _Run(rid, op, {}, started, resumed=False)
            return self._run(run)
        finally:
            self._release()

    def _resume(self, rid: RolloutId) -> Outcome:
        self._acquire(rid)
        try:
            entries = self.journal.entries(rid)
            started = entries[0].data
            done = {str(e.data["step"]): e.data for e in entries if e.kind is EntryKind.APPLIED}
            run = _Run(rid, Operation(str(started["operation"])), done, started, resumed=True)
            self._emit("resumed", {"id": rid, "done": sorted(done)})
            return self._run(run)
        finally:
            self._release()

    # ------------------------------------------------------------------ the steps

    def _run(self, run: _Run) -> Outcome:
        if not run.done:
            self._append(run, EntryKind.PHASE, {"phase": Phase.PROGRESSING.value}, phase=Phase.PROGRESSING)
        for step in STEPS[run.op]:
            if step in run.done:
                continue
            self._beat()
            self._append(run, EntryKind.INTENT, {"step": step})
            try:
                result = self._do(run, step)
            except _Refused as refused:
                self._append(run, EntryKind.DECISION, {"step": step, "decision": "refused",
                                                       "reason": refused.reason, **refused.data})
                self._append(run, EntryKind.PHASE, {"phase": Phase.ROLLED_BACK.value}, phase=Phase.ROLLED_BACK)
                return self._outcome(run, "refused", f"{run.op.value} refused: {refused.reason}")
            except (GantryError, OSError) as exc:
                reason = " ".join(str(exc).split())[:400]
                self._append(run, EntryKind.ERROR, {"step": step, "action": step, "error": reason})
                self._append(run, EntryKind.PHASE, {"phase": Phase.FAILED.value}, phase=Phase.FAILED)
                return self._outcome(run, "failed", f"{run.op.value} stopped at {step}: {reason}")
            run.done[step] = self._append(run, EntryKind.APPLIED, {"step": step, "at": self.clock.now(),
                                                                     **result}).data
        self._append(run, EntryKind.PHASE, {"phase": Phase.PROMOTED.value}, phase=Phase.PROMOTED)
        return self._outcome(run, "done", f"{run.op.value} done: traffic on the "
                             f"{'standby' if run.op is Operation.FAILOVER else 'primary'}")

    def _do(self, run: _Run, step: str) -> JSONObject:
        s = self.settings
        failover = run.op is Operation.FAILOVER
        force = bool(run.started.get("force"))
        if step == "confirm":
            if failover:
                return self._confirm_down(force)
            return self._confirm_up(force)
        if step == "scale":
            size = s.active_size if failover else s.warm_size
            self.target.scale(size)
            return {"size": size}
        if step == "wait":
            return self._wait_healthy("standby", float(cast(float, run.started["startedAt"])) + s.rto_seconds)
        if step == "switch":
            role: Role = "standby" if failover else "primary"
            self.target.switch(role)
            live = self.target.active()
            if live != role:
                raise DrFailed(f"traffic must be on the {role} after the switch, but the live switch says {live}")
            return {"to": role}
        if step == "verify":
            return self._verify("standby" if failover else "primary")
        if step == "replication":
            return {"replication": self._replication()}
        if step == "record":
            return self._record(run)
        raise AssertionError(step)

    def _probe(self, role: Role) -> RegionHealth:
        health = self.target.probe(role)
        self._emit("probe", health.as_json())
        return health

    def _interval(self) -> float:

        return min(float(c.interval) for c in self.settings.health_checks)

    def _confirm_down(self, force: bool) -> JSONObject:
        """Probe the primary until one check fails its threshold in a row (down) or a whole round passes."""
        thresholds = {c.name: c.failure_threshold for c in self.settings.health_checks}
        streak = dict.fromkeys(thresholds, 0)
        first_failure: float | None = None
        rounds = 0
        while True:
            at = self.clock.now()
            health = self._probe("primary")
            rounds += 1
            if health.healthy:
                if force:
                    return {"primary": "healthy", "forced": True, "rounds": rounds}
                raise _Refused("the primary is healthy; pass --force to fail over anyway",
                               {"health": health.as_json()})
            for check in health.checks:
                streak[check.name] = 0 if check.ok else streak.get(check.name, 0) + 1
            first_failure = at if first_failure is None else first_failure
            down = [n for n, k in streak.items() if k >= thresholds.get(n, 1)]
            if down:
                return {"primary": "down", "checks": cast(JSONValue, sorted(down)), "rounds": rounds,
                        "firstFailureAt": first_failure, "health": health.as_json()}
            self._sleep(self._interval())

    def _confirm_up(self, force: bool) -> JSONObject:
        """The primary must pass ``verifyProbes`` rounds in a row before traffic goes back to it."""
        passed = 0
        for rounds in range(1, self.settings.verify_probes * 3 + 1):
            health = self._probe("primary")
            passed = passed + 1 if health.healthy else 0
            if passed >= self.settings.verify_probes:
                return {"primary": "healthy", "rounds": rounds}
            self._sleep(self._interval())
        if force:
            return {"primary": "unhealthy", "forced": True}
        raise _Refused("the primary is not healthy yet; fail back once it is (or pass --force)", {})

    def _wait_healthy(self, role: Role, deadline: float) -> JSONObject:
        rounds = 0
        while True:
            rounds += 1
            health = self._probe(role)
            if health.healthy:
                return {"healthy": True, "rounds": rounds}
            if self.clock.now() >= deadline:
                failing = ", ".join(c.name for c in health.checks if not c.ok)
                raise DrFailed(f"the {role} did not become healthy within the RTO ({self.settings.rto}); "
                               f"failing checks: {failing}; traffic was not switched")
            self._sleep(self._interval())

    def _verify(self, role: Role) -> JSONObject:
        passed, rounds = 0, 0
        limit = self.settings.verify_probes * 4
        while passed < self.settings.verify_probes:
            rounds += 1
            health = self._probe(role)
            passed = passed + 1 if health.healthy else 0
            if passed >= self.settings.verify_probes:
                break
            if rounds >= limit:
                raise DrFailed(f"the {role} failed verification after the switch ({rounds} probe rounds, "
                               f"{self.settings.verify_probes} in a row needed); traffic is on the {role}")
            self._sleep(self._interval())
        return {"verified": role, "rounds": rounds}

    def _replication(self) -> JSONValue:
        cfg = self.settings.replication_lag
        if cfg is None:
            return {"status": "skipped", "passed": None}
        try:
            lag = self.target.replication_lag()
        except (MetricsUnavailable, GantryError, OSError) as exc:
            # The query URL may carry credentials (user:password@host): never into the journal or the console.
            error = _USERINFO.sub("://***@", " ".join(str(exc).split()))[:300]
            return {"status": "unavailable", "passed": False, "error": error,
                    "max": cfg.max, "query": cfg.query}
        if lag is None:
            return {"status": "no data", "passed": False, "max": cfg.max, "query": cfg.query}
        passed = lag <= cfg.max
        return {"status": "pass" if passed else "fail", "passed": passed, "lag": lag, "max": cfg.max,
                "query": cfg.query}

    def _record(self, run: _Run) -> JSONObject:
        times = _times(run.started, run.done)
        start = times.get("faultAt", times.get("firstFailureAt", times["startedAt"]))
        end = times.get("verify", self.clock.now())
        rto = end - start
        return {"rtoSeconds": rto, "rtoGoalSeconds": self.settings.rto_seconds,
                "rtoMet": rto <= self.settings.rto_seconds, "from": start, "to": end}

    def _outcome(self, run: _Run, result: str, message: str) -> Outcome:
        record = run.done.get("record", {})
        replication = run.done.get("replication", {}).get("replication")
        rto = record.get("rtoSeconds")
        return Outcome(run.id, run.op, result, message, _times(run.started, run.done),
                       replication if isinstance(replication, Mapping) else None,
                       float(cast(float, rto)) if isinstance(rto, int | float) else None,
                       self.settings.rto_seconds, run.resumed)


class _Refused(Exception):
    def __init__(self, reason: str, data: JSONObject) -> None:
        super().__init__(reason)
        self.reason, self.data = reason, data


def _times(started: JSONObject, done: Mapping[str, JSONObject]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("startedAt", "faultAt"):
        value = started.get(key)
        if isinstance(value, int | float):
            out[key] = float(value)
    for step, data in done.items():
        at = data.get("at")
        if isinstance(at, int | float):
            out[step] = float(at)
    confirm = done.get("confirm", {})
    first = confirm.get("firstFailureAt")
    if isinstance(first, int | float):
        out["firstFailureAt"] = float(first)
    return out


def replay(entries: Sequence[Entry]) -> dict[str, JSONObject]:
    """The APPLIED steps of one DR record, by step name (what ``status`` and the drill read)."""
    return {str(e.data["step"]): e.data for e in entries if e.kind is EntryKind.APPLIED}


def describe_lease(lease: Lease | None) -> str:
    return "free" if lease is None else f"held by {lease.holder} (pid {lease.pid}) until {iso(lease.expires_at)}"


def check_stack(settings: DrSettings, stack: str) -> None:
    """The stack a command names must be the pair's primary or standby."""
    if settings.role_of(stack) is None:
        raise InputError(f"--stack must be {settings.primary} or {settings.standby} (gantry:dr), but {stack!r} "
                         "was given")
