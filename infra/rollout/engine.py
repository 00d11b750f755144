"""The rollout engine: runs the scheduler's actions against a target, journaling each one before it acts.

Called by ``gantry rollout start|resume|abort|promote`` (``infra.commands.rollout``), the sandbox demo
and the crash drills. It holds the stack's lease for the whole run, asks ``scheduler.next_action`` what
to do, writes the journal entry that leads to the action, performs it, and folds the new entries
(including operator actions other processes wrote) back into the state. ``resume`` rebuilds the state
from the journal alone, checks the live target against it, and continues, or rolls back when the
state is ambiguous. Its decisions (intents, decisions, the final phase) are compare-and-appends on
the state they were based on: when another process wrote first (an operator's abort), the write is
refused, the engine folds the new entries and decides again, so an acknowledged abort is honoured.
While a step's interval runs, a streaming judge looks at the evidence every
``look_every`` seconds (``rollout.pollInterval``); only a look that fails the step is journaled.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, cast

from infra.errors import ExitCode, InputError
from infra.rollout.entries import (
    Analysed,
    Applied,
    Body,
    Check,
    Checkpointed,
    Decided,
    EffectKind,
    Failed,
    HookOutcome,
    HooksRan,
    Intended,
    Logged,
    Observe,
    PhaseSet,
    Prepare,
    Promote,
    Requested,
    Revert,
    SetWeight,
    Started,
    Switch,
    Verified,
    read,
)
from infra.rollout.entries import OperatorAction as OperatorAction
from infra.rollout.errors import QuarantinedVersion, StackLocked
from infra.rollout.journal import Journal, JournalConflict, Quarantine, RolloutRecord
from infra.rollout.lock import Lease, Lock, iso
from infra.rollout.masking import Masker
from infra.rollout.provenance import UNKNOWN, Provenance
from infra.rollout.scheduler import (
    Action,
    ActionKind,
    Plan,
    RolloutState,
    StepEffect,
    fold,
    mismatches,
    next_action,
    replay,
    started,
)
from infra.rollout.seams import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    Clock,
    Decision,
    Event,
    EventKind,
    Hook,
    JSONObject,
    Notifier,
    Phase,
    RolloutId,
    ServingCheck,
    StackName,
    StreamingAnalysis,
    Target,
    Verdict,
)

_log = logging.getLogger(__name__)
_DECISION_PHASE = {Decision.PROMOTE: Phase.PROMOTING, Decision.ROLLBACK: Phase.ROLLING_BACK}
_EVENT_FOR = {Phase.PROMOTED: EventKind.PROMOTED, Phase.ROLLED_BACK: EventKind.ROLLED_BACK,
              Phase.FAILED: EventKind.FAILED}
_EXIT_FOR = {Phase.PROMOTED: ExitCode.OK, Phase.ROLLED_BACK: ExitCode.FAILED, Phase.FAILED: ExitCode.OPERATOR}


class Observer(Protocol):
    """Sees every journal entry as it is folded (the live view, ``--json``) and every wait."""

    def on_entry(self, state: RolloutState, entry: Logged) -> None: ...

    def on_wait(self, state: RolloutState, until: float, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a rollout ended. ``exit_code``: 0 promoted, 1 rolled back, 4 rollback failed."""

    rollout_id: RolloutId
    phase: Phase
    reason: str
    state: RolloutState
    verified: bool
    mismatches: tuple[str, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_FOR.get(self.phase, ExitCode.FAILED)


def new_rollout_id(now: float) -> RolloutId:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return RolloutId(f"r-{stamp}-{secrets.token_hex(3)}")


def _checks(result: AnalysisResult) -> tuple[Check, ...]:
    return tuple(Check(name=c.name, verdict=c.verdict, value=c.value, limit=c.limit, detail=c.detail)
                 for c in result.checks)


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else "..." + flat[-limit:]


class Heartbeat(threading.Thread):
    """Renews a lease every ``every`` wall-clock seconds until stopped; records a lost lease for the loop."""

    def __init__(self, lock: Lock, lease: Lease, every: float) -> None:
        super().__init__(name=f"gantry-lease-{lease.stack}", daemon=True)
        self.lock, self.lease, self.every = lock, lease, every
        self.lost: StackLocked | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            try:
                self.lease = self.lock.heartbeat(self.lease)
            except StackLocked as exc:
                self.lost = exc
                return
            except Exception as exc:  # a busy database: try again at the next beat, the lease has ttl to spare
                _log.warning("lease heartbeat for %s failed, retrying in %.0fs: %s: %s", self.lease.stack,
                             self.every, type(exc).__name__, _one_line(str(exc), 200))
                continue

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5.0)


class Engine:
    """Drives one rollout at a time through the seams. Every effect is journaled before it happens."""

    def __init__(self, *, target: Target, analysis: Analysis, journal: Journal, lock: Lock, clock: Clock,
                 hooks: Sequence[Hook] = (), notifier: Notifier | None = None, observer: Observer | None = None,
                 poll: float = 1.0, masker: Masker | None = None, look_every: float = 1.0) -> None:
        self.target = target
        self.analysis = analysis
        self.journal = journal
        self.lock = lock
        self.clock = clock
        self.hooks = tuple(hooks)
        self.notifier = notifier
        self.observer = observer
        self.poll = poll
        # Every secret the config made Gantry hold is masked in what is journaled, so it cannot reach the
        # journal, `status`, `--json` stdout or the live view, whichever effect's text carried it.
        self.masker = masker or Masker()
        self.look_every = look_every
        """Seconds between a streaming judge's looks during a step (``rollout.pollInterval``)."""
        self._last_beat = 0.0
        self._next_look = 0.0

    # ------------------------------------------------------------------ entry points

    def start(self, *, stack: StackName, service: str, image: str, plan: Plan, force: bool = False,
              provenance: Provenance = UNKNOWN) -> Outcome:
        """Start a rollout of ``image`` built from ``provenance``'s commit; inputs were validated by the caller."""
        q = self.journal.quarantined(stack, service, image)
        if q is not None and not force:
            raise QuarantinedVersion(
                f"image must not be a quarantined version, but {image!r} was given: rollout {q.rollout_id} "
                f"rolled it back at {iso(q.at)} ({q.reason}); pass --force to start it anyway")
        unfinished = self.journal.active(stack)
        if unfinished:
            holder = self.lock.holder(stack)
            raise StackLocked(stack, f"unfinished rollout {unfinished[0].id} (resume or abort it first)",
                              holder.host if holder else "this journal", holder.pid if holder else None,
                              iso(holder.expires_at) if holder else None)
        rid = new_rollout_id(self.clock.now())
        lease = self.lock.acquire(stack, rid)
        try:
            baseline = self.target.current()
            now = self.clock.now()
            body = started(stack=stack, service=service, image=image, baseline=baseline, plan=plan,
                           forced=force and q is not None)
            first = self._create(
                RolloutRecord(rid, stack, service, image, plan.strategy, Phase.PENDING, now, now, provenance), body)
            state = replay([first])
            self._observe(state, [first])
            self._notify(state, EventKind.STARTED, f"rollout of {image} started ({plan.strategy.value})")
            return self._run(state, lease)
        finally:
            self._release(lease)

    def resume(self, rollout_id: RolloutId) -> Outcome:
        """Continue a rollout from its journal (its process died, or it was paused)."""
        record = self.journal.get(rollout_id)
        done = replay(read(self.journal, rollout_id))
        if done.phase.terminal and done.verified is not None:
            # Finished and verified: report it without taking the stack from whoever holds it now.
            return self._outcome(done)
        lease = self.lock.acquire(record.stack, rollout_id)
        try:
            state = replay(read(self.journal, rollout_id))
            if not state.phase.terminal:
                state = self._reconcile(state)
            return self._run(state, lease)
        finally:
            self._release(lease)

    def revert_to(self, source_id: RolloutId) -> Outcome:
        """Fast-track revert: restore the state a past rollout checkpointed, as a rollout of its own.

        The revert is journaled like any rollback (decision, intent, applied, phase) and the source's
        image is quarantined, so ``status``, ``history`` and a crash during the revert behave as usual.
        """
        source = self.journal.get(source_id)
        entries = read(self.journal, source_id)
        src = replay(entries)
        if src.checkpoint is None:
            raise InputError(f"--to must name a rollout that took a checkpoint, but {source_id} never did")
        unfinished = self.journal.active(source.stack)
        if unfinished:
            raise StackLocked(source.stack, f"unfinished rollout {unfinished[0].id} (abort it instead)",
                              "this journal", None, None)
        rid = new_rollout_id(self.clock.now())
        lease = self.lock.acquire(source.stack, rid)
        try:
            before = self.target.checkpoint()
            now = self.clock.now()
            # The source's plan and baseline, so the revert replays like the rollout it undoes.
            origin = entries[0].body
            assert isinstance(origin, Started)  # replay() above checked it
            body = Started.model_validate({**origin.to_json(), "revert_of": source_id, "before": before})
            first = self._create(RolloutRecord(rid, source.stack, source.service, source.image,
                                               source.strategy, Phase.PENDING, now, now), body)
            state = replay([first])
            self._append(state, Checkpointed.model_validate({"state": src.checkpoint, "from": source_id}),
                         phase=Phase.PROGRESSING)
            self._append(state, Decided(
                decision=Decision.ROLLBACK, override=True, step=-1,
                reason=f"fast-track revert to the checkpoint of {source_id} ({src.baseline_image})"),
                phase=Phase.ROLLING_BACK)
            return self._run(self._refresh(state), lease)
        finally:
            self._release(lease)

    def _reconcile(self, state: RolloutState) -> RolloutState:
        """After a crash: the live target must agree with the journal, or the state is ambiguous."""
        if state.paused:
            self._append(state, Requested(action=OperatorAction.RESUME, reason="resumed"), phase=Phase.PROGRESSING)
            state = self._refresh(state)
        if state.pending is not None or state.error is not None or state.phase is Phase.ROLLING_BACK:
            return state  # the scheduler already knows what to do (roll back, or finish the rollback)
        try:
            live = self.target.current()
        except Exception as exc:  # can't read the target: we can't prove anything, so undo
            diff = [f"target state unreadable: {_one_line(str(exc))}"]
        else:
            diff = mismatches(state, live)
        if diff:
            self._append(state, Decided(decision=Decision.ROLLBACK, reason="ambiguous on resume: " + "; ".join(diff),
                                        override=False, step=state.step), phase=Phase.ROLLING_BACK)
            state = self._refresh(state)
        return state

    # ------------------------------------------------------------------ the loop

    def _run(self, state: RolloutState, lease: Lease) -> Outcome:
        # A `pulumi up` can block the loop for minutes: a background thread keeps the lease alive meanwhile,
        # on wall-clock time. The loop also renews on the engine's clock, which is what a FakeClock advances.
        beat = Heartbeat(self.lock, lease, self.lock.ttl / 3)
        beat.start()
        try:
            while True:
                if beat.lost is not None:
                    raise beat.lost  # someone else holds the stack now: acting on it would race them
                lease = self._beat(lease)
                action = next_action(state, self.clock.now())
                if action.kind is ActionKind.FINISH:
                    outcome = self._finish(state, action)
                    if outcome is not None:
                        return outcome
                else:
                    self._perform(state, action)
                state = self._refresh(state)
        finally:
            beat.stop()

    def _refresh(self, state: RolloutState) -> RolloutState:
        new = read(self.journal, state.rollout_id, after=state.last_seq)
        state = fold(state, new)
        self._observe(state, new)
        return state

    def _observe(self, state: RolloutState, entries: Sequence[Logged]) -> None:
        if self.observer is not None:
            for e in entries:
                self.observer.on_entry(state, e)

    def _create(self, record: RolloutRecord, body: Started) -> Logged:
        # Not masked: it holds the plan and, for a revert, a restore artifact (``before``), both byte-exact.
        entry = self.journal.create(record, body.to_json())
        return Logged(entry.seq, entry.rollout_id, entry.at, body)

    def _masked(self, body: Body) -> JSONObject:
        data = body.to_json()
        if isinstance(body, Checkpointed):  # a checkpoint is a restore artifact: byte-exact, never printed
            return data
        return cast(JSONObject, self.masker.mask_json(data))

    def _append(self, state: RolloutState, body: Body, *, phase: Phase | None = None,
                quarantine: bool = False, expect_last: int | None = None) -> None:
        now = self.clock.now()
        data = self._masked(body)
        q = None
        if quarantine:
            q = Quarantine(state.stack, state.service, state.image, state.rollout_id, now,
                           _one_line(str(data.get("reason") or data.get("message") or "rolled back"), 200))
        self.journal.append(state.rollout_id, body.kind, data, now, phase=phase, quarantine=q,
                            expect_last=expect_last)

    def _decide_on(self, state: RolloutState, body: Body, *, phase: Phase | None = None,
                   quarantine: bool = False) -> bool:
        """Journal a choice made on ``state``, unless another process wrote to the rollout since ``state``
        was read (False): the loop then folds what it wrote (an abort, a pause) and chooses again."""
        try:
            self._append(state, body, phase=phase, quarantine=quarantine, expect_last=state.last_seq)
        except JournalConflict:
            return False
        return True

    def _beat(self, lease: Lease) -> Lease:
        now = self.clock.now()
        if now - self._last_beat >= self.lock.ttl / 3:
            lease = self.lock.heartbeat(lease)
            self._last_beat = now
        return lease

    def _release(self, lease: Lease) -> None:
        try:
            self.lock.release(lease)
        finally:
            self.target.finalize()

    def _sleep(self, seconds: float) -> None:
        # Never sleep past a heartbeat: the lease must outlive the wait.
        self.clock.sleep(max(0.0, min(seconds, self.poll, self.lock.ttl / 3)))

    # ------------------------------------------------------------------ actions

    def _perform(self, s: RolloutState, a: Action) -> None:
        match a.kind:
            case ActionKind.CHECKPOINT:
                self._checkpoint(s)
            case ActionKind.HOOKS:
                self._hooks(s, a)
            case ActionKind.PREPARE:
                self._effect(s, Prepare(image=s.image), lambda: self.target.prepare(s.image))
            case ActionKind.APPLY_STEP:
                self._apply_step(s, a)
            case ActionKind.SWITCH:
                color = a.color
                assert color is not None
                self._effect(s, Switch(color=color), lambda: self.target.switch(color))
            case ActionKind.WAIT:
                now = self.clock.now()
                if self.observer is not None:
                    self.observer.on_wait(s, a.until, now)
                if a.look and isinstance(self.analysis, StreamingAnalysis):
                    if now >= self._next_look:
                        self._next_look = now + self.look_every
                        self._look(s, a, self.analysis)
                        return
                    self._sleep(min(a.until, self._next_look) - now)
                    return
                self._sleep(a.until - now)
            case ActionKind.PAUSED:
                if self.observer is not None:
                    self.observer.on_wait(s, 0.0, self.clock.now())
                self._sleep(self.poll)
            case ActionKind.ANALYSE:
                self._analyse(s, a)
            case ActionKind.DECIDE:
                self._decide(s, a)
            case ActionKind.PROMOTE:
                self._effect(s, Promote(), self.target.promote)
            case ActionKind.REVERT:
                self._revert(s)
            case ActionKind.FINISH:  # handled by the loop
                pass

    def _checkpoint(self, s: RolloutState) -> None:
        try:
            cp = self.target.checkpoint()
        except Exception as exc:
            self._append(s, Failed(action=EffectKind.CHECKPOINT, message=_one_line(str(exc))))
            return
        self._decide_on(s, Checkpointed(state=cp), phase=Phase.PROGRESSING)

    def _hook_payload(self, s: RolloutState, a: Action) -> JSONObject:
        step = s.plan.steps[s.step] if 0 <= s.step < len(s.plan.steps) else None
        return {"rollout": s.rollout_id, "stack": s.stack, "service": s.service, "image": s.image,
                "baseline": s.baseline_image, "phase": a.hook_phase.value if a.hook_phase else "",
                "step": s.step, "weight": step.weight if step else 0}

    def _hooks(self, s: RolloutState, a: Action) -> None:
        payload = self._hook_payload(s, a)
        results: list[HookOutcome] = []
        for hook in self.hooks:
            if hook.phase is not a.hook_phase:
                continue
            try:
                r = hook.run(payload)
                ok, detail = r.ok, r.detail
            except Exception as exc:  # a hook that raises has failed; it must not crash the rollout
                ok, detail = False, f"hook raised: {_one_line(str(exc))}"
            results.append(HookOutcome(name=hook.name, ok=ok, detail=_one_line(detail, 300)))
        assert a.hook_phase is not None
        self._append(s, HooksRan(key=a.hook_key, phase=a.hook_phase, results=tuple(results)))

    def _apply_step(self, s: RolloutState, a: Action) -> None:
        ps = a.plan_step
        assert ps is not None
        if ps.effect is StepEffect.SET_WEIGHT:
            self._effect(s, SetWeight(weight=ps.weight, step=a.step), lambda: self.target.set_weights(ps.weight))
        elif ps.effect is StepEffect.SWITCH:
            color = a.color
            assert color is not None
            self._effect(s, Switch(color=color, step=a.step), lambda: self.target.switch(color))
        else:
            self._append(s, Applied(effect=Observe(step=a.step)))

    def _effect(self, s: RolloutState, effect: Prepare | SetWeight | Switch | Promote,
                fn: Callable[[], None]) -> None:
        if not self._decide_on(s, Intended(effect=effect)):
            return  # an operator wrote first: nothing was done, the loop reads it and decides again
        try:
            fn()
        except Exception as exc:
            # Any failure of the target (a failed `pulumi up`, a dead HAProxy socket) ends in a rollback.
            self._append(s, Failed(action=effect.action, message=_one_line(str(exc)), type=type(exc).__name__))
            if isinstance(exc, StackLocked):
                # Another update holds the stack (Pulumi's ConcurrentUpdateError): no rollback can run
                # until it ends, so stop with exit 3; `gantry rollout resume` rolls back afterwards.
                raise
            return
        self._append(s, Applied(effect=effect))

    def _revert(self, s: RolloutState) -> None:
        if s.checkpoint is None:
            # We never mutate before the checkpoint is journaled, so there is nothing to undo.
            self._append(s, Applied(effect=Revert(noop=True)))
            return
        checkpoint = s.checkpoint
        self._append(s, Intended(effect=Revert()))
        try:
            self.target.revert(checkpoint)
        except StackLocked:
            # A live update that is not ours holds the stack: the rollback is not failed, only blocked.
            # The revert intent stays pending, so `gantry rollout resume` runs it again (exit 3 now).
            raise
        except Exception as exc:
            # Keep the lines: a failed rollback's message carries the checkpoint file and recovery commands.
            self._append(s, Failed(action=EffectKind.REVERT, message=str(exc)[-4000:], type=type(exc).__name__),
                         phase=Phase.FAILED, quarantine=True)
            return
        self._append(s, Applied(effect=Revert()))

    def _context(self, s: RolloutState, step: int, now: float) -> AnalysisContext:
        return AnalysisContext(rollout_id=s.rollout_id, step_index=step, weight=s.plan.steps[step].weight,
                               step_started_at=s.window_started_at, now=now, canary_version=s.image,
                               baseline_version=s.baseline_image, final=s.holds + 1 >= s.plan.max_holds)

    def _look(self, s: RolloutState, a: Action, judge: StreamingAnalysis) -> None:
        """A look within the interval: journaled only when it fails the step (looks that find nothing change
        nothing, so they leave no trace and a crash between them loses nothing)."""
        now = self.clock.now()
        try:
            result = judge.look(self._context(s, a.step, now))
        except Exception as exc:  # a look that cannot answer proves nothing; the interval's analysis fails safe
            _log.info("streaming look at step %d could not answer (%s); the interval's analysis decides",
                      a.step, self.masker.mask(_one_line(str(exc), 200)))
            return
        if result.verdict is not Verdict.FAIL:
            return
        ps = s.plan.steps[a.step]
        self._append(s, Analysed(step=a.step, weight=ps.weight, label=ps.label, verdict=Verdict.FAIL,
                                 checks=_checks(result), early=True, window=now - s.window_started_at))

    def _analyse(self, s: RolloutState, a: Action) -> None:
        now = self.clock.now()
        ps = s.plan.steps[a.step]
        ctx = self._context(s, a.step, now)
        try:
            result = self.analysis.analyse(ctx)
        except Exception as exc:  # an analysis that cannot answer fails safe
            result = AnalysisResult(Verdict.FAIL, (CheckResult("analysis", Verdict.FAIL, None, None,
                                                               f"analysis raised: {_one_line(str(exc))}"),))
        if s.step_hook_failures:
            # The hook's own reason ("cannot run gantry: ...", "exit 1: ...") reaches the view and `status`.
            reasons = (*s.step_hook_reasons, *([""] * len(s.step_hook_failures)))
            hook_checks = [CheckResult(f"hook:{n}", Verdict.FAIL, None, None,
                                       f"step hook failed: {why}" if why else "step hook failed")
                           for n, why in zip(s.step_hook_failures, reasons, strict=False)]
            result = AnalysisResult(Verdict.FAIL, (*result.checks, *hook_checks), result.traffic)
        # The request and error counts the judge read, per track: the KPI report's zero-downtime evidence.
        traffic = {track.value: {"requests": c.requests, "errors": c.errors}
                   for track, c in sorted(result.traffic.items())}
        self._append(s, Analysed(step=a.step, weight=ps.weight, label=ps.label, verdict=result.verdict,
                                 checks=_checks(result), window=now - s.window_started_at, traffic=traffic,
                                 **({"needed": result.needed} if result.needed is not None else {})))

    def _decide(self, s: RolloutState, a: Action) -> None:
        decision = a.decision
        assert decision is not None
        if not self._decide_on(s, Decided(decision=decision, reason=a.reason, override=a.override, step=s.step),
                               phase=_DECISION_PHASE.get(decision)):
            return
        if decision is Decision.ADVANCE:
            self._notify(s, EventKind.STEP_PASSED, a.reason)

    def _finish(self, s: RolloutState, a: Action) -> Outcome | None:
        """End the rollout, or None when an operator wrote first (the loop folds it and goes on)."""
        phase = a.phase or s.phase
        if not s.phase.terminal:
            if not self._decide_on(s, PhaseSet(phase=phase, reason=s.reason), phase=phase,
                                   quarantine=phase is Phase.ROLLED_BACK):
                return None
            s = self._refresh(s)
        if s.verified is None:
            self._notify(s, _EVENT_FOR[s.phase], f"{s.phase.value}: {s.reason}")
            diff = self._verify(s)
            self._append(s, Verified(ok=not diff, mismatches=tuple(diff)))
            s = self._refresh(s)
            return Outcome(s.rollout_id, s.phase, s.reason, s, bool(s.verified), tuple(diff))
        return self._outcome(s)

    def _verify(self, s: RolloutState) -> list[str]:
        """The end check: the live target against the journal, then (where the target can) what users see."""
        try:
            live = self.target.current()
            diff = mismatches(s, live)
            if isinstance(self.target, ServingCheck):
                diff += self.target.verify_serving(live)
        except Exception as exc:
            diff = [f"target state unreadable: {_one_line(str(exc))}"]
        return diff

    def _outcome(self, s: RolloutState) -> Outcome:
        last = [e.body for e in read(self.journal, s.rollout_id) if isinstance(e.body, Verified)]
        found = last[-1].mismatches if last else ()
        return Outcome(s.rollout_id, s.phase, s.reason, s, bool(s.verified), found)

    def _notify(self, s: RolloutState, kind: EventKind, message: str) -> None:
        if self.notifier is None:
            return
        event = Event(kind=kind, rollout_id=s.rollout_id, stack=s.stack, service=s.service, message=message,
                      data={"image": s.image, "step": s.step, "weight": s.weight, "phase": s.phase.value})
        try:
            self.notifier.notify(event)
        except Exception as exc:  # notifiers promise not to raise; a broken one must still not stop a rollback
            _log.warning("notifier %s raised on %s of rollout %s: %s", type(self.notifier).__name__, kind.value,
                         s.rollout_id, self.masker.mask(_one_line(f"{type(exc).__name__}: {exc}", 200)))


# --------------------------------------------------------------------------- operator actions


REQUEST_ATTEMPTS = 1000
"""Compare-and-append attempts before an operator action gives up (each loses only to a newer entry)."""


def request(journal: Journal, clock: Clock, rollout_id: RolloutId, action: OperatorAction,
            reason: str = "") -> RolloutState:
    """Journal an operator action for the engine running the rollout (or for the next ``resume``).

    The checks and the write are one compare-and-append on the state they read: an action is never
    journaled against a rollout that finished meanwhile. It is durable (committed) when this returns,
    so the CLI acknowledges it only then.
    """
    record = journal.get(rollout_id)
    for _ in range(REQUEST_ATTEMPTS):
        state = replay(read(journal, rollout_id))
        if state.phase.terminal:
            raise InputError(f"rollout {rollout_id} must be unfinished to {action} it, but it is already "
                             f"{state.phase.value}")
        phase: Phase | None = None
        if action == OperatorAction.PAUSE:
            if state.phase not in (Phase.PROGRESSING, Phase.PENDING):
                raise InputError(f"rollout {rollout_id} must be progressing to pause it, but it is "
                                 f"{state.phase.value}")
            phase = Phase.PAUSED
        if action == OperatorAction.RESUME and state.paused:
            phase = Phase.PROGRESSING
        body = Requested(action=action, reason=reason or f"{action.value} by operator")
        if action == OperatorAction.PROMOTE:
            body = Requested(action=action, reason=body.reason, skip_analysis=True)
        try:
            journal.append(record.id, body.kind, body.to_json(), clock.now(), phase=phase,
                           expect_last=state.last_seq)
        except JournalConflict:
            continue  # the engine wrote meanwhile: check again against what it wrote
        return replay(read(journal, rollout_id))
    raise JournalConflict(f"rollout {rollout_id} changed on each of {REQUEST_ATTEMPTS} attempts to {action} it; "
                          "try again")
