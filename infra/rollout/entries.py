"""Typed journal entries: one frozen model per entry kind, parsed once where entries are read from the journal.

The journal stores each entry as a kind and a JSON payload (``infra.rollout.journal``); this module is the
contract for those payloads. The engine builds a body (``Intended(SetWeight(weight=10, step=0))``) and
writes ``body.to_json()``; every reader (``read``: the engine, the scheduler's replay, ``status``, the KPIs,
the drills) gets ``Logged`` entries whose ``body`` it matches by class, never by string keys.
Parsing is lenient where the format grew (fields added later have defaults, unknown keys are ignored), so
journals written by older versions read the same; ``to_json`` writes only the fields that were given, so a
parsed entry serialises back to what was stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, TypeAdapter, ValidationError

from components.spec import Color
from infra.errors import PermanentError
from infra.rollout.journal import Entry, EntryKind, Journal
from infra.rollout.plan import Plan
from infra.rollout.seams import (
    Decision,
    HookPhase,
    JSONObject,
    JSONValue,
    Phase,
    RolloutId,
    StackName,
    Track,
    TrafficState,
    Verdict,
)


class CorruptEntry(PermanentError):
    """A journal entry's payload does not match its kind's model (a hand-edited or damaged journal)."""


def _mapping(value: object) -> object:
    if not isinstance(value, Mapping):
        raise ValueError("must be a JSON object")
    return value


def _as_is(value: object) -> object:
    return value


# A JSON object kept byte-exact (a checkpoint can hold a whole exported deployment): checked to be an
# object, never copied or coerced. Typed ``Mapping[str, object]`` because pydantic cannot build a schema
# for the recursive ``JSONValue`` alias; ``blob`` gives it back as ``JSONObject``.
Blob = Annotated[Mapping[str, object], PlainValidator(_mapping), PlainSerializer(_as_is)]


def blob(value: Mapping[str, object]) -> JSONObject:
    """A ``Blob`` field as the JSON object it was validated to be."""
    return cast(JSONObject, value)


def _plan_in(value: object) -> Plan:
    if isinstance(value, Plan):
        return value
    if not isinstance(value, Mapping):
        raise ValueError("must be a JSON object")
    try:
        return Plan.from_json(cast(JSONObject, value))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"is missing or mistypes {exc}") from exc


def _plan_out(plan: Plan) -> Mapping[str, object]:
    return plan.to_json()


PlanField = Annotated[Plan, PlainValidator(_plan_in), PlainSerializer(_plan_out)]


class _Model(BaseModel):
    """Frozen; unknown keys ignored (a newer field, an old test's marker); ``to_json`` writes what was given."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    def to_json(self) -> JSONObject:
        return cast(JSONObject, self.model_dump(mode="json", exclude_unset=True, by_alias=True))


class Body(_Model):
    """The payload of one entry kind; ``kind`` is stored beside it in the journal, not inside it."""

    kind: ClassVar[EntryKind]

    @classmethod
    def from_json(cls, data: JSONObject) -> Body:
        return cls.model_validate(data)


# --------------------------------------------------------------------------- effects (INTENT / APPLIED)


class EffectKind(StrEnum):
    """The ``action`` of an INTENT, APPLIED or ERROR entry: one effect on the target."""

    CHECKPOINT = "checkpoint"
    PREPARE = "prepare"
    SET_WEIGHT = "set_weight"
    SWITCH = "switch"
    OBSERVE = "observe"
    PROMOTE = "promote"
    REVERT = "revert"


class Prepare(_Model):
    action: Literal[EffectKind.PREPARE] = EffectKind.PREPARE
    image: str | None = None


class SetWeight(_Model):
    action: Literal[EffectKind.SET_WEIGHT] = EffectKind.SET_WEIGHT
    weight: int
    step: int | None = None
    """The plan step it applies; None for a weight set outside the plan."""


class Switch(_Model):
    action: Literal[EffectKind.SWITCH] = EffectKind.SWITCH
    color: Color
    step: int | None = None
    """The plan step it applies; None for the switch of a promotion by override."""


class Observe(_Model):
    action: Literal[EffectKind.OBSERVE] = EffectKind.OBSERVE
    step: int


class Promote(_Model):
    action: Literal[EffectKind.PROMOTE] = EffectKind.PROMOTE


class Revert(_Model):
    action: Literal[EffectKind.REVERT] = EffectKind.REVERT
    noop: bool = False
    """Nothing was checkpointed, so nothing was mutated: the revert did nothing."""


Effect = Annotated[Prepare | SetWeight | Switch | Observe | Promote | Revert, Field(discriminator="action")]
_EFFECT: TypeAdapter[Prepare | SetWeight | Switch | Observe | Promote | Revert] = TypeAdapter(Effect)

PLAN_STEP_EFFECTS = (SetWeight, Switch, Observe)


def _always_set(model: _Model) -> JSONObject:
    # The action is the discriminator: written even though it has a default.
    return {"action": cast(JSONValue, model.model_dump(mode="json")["action"]), **model.to_json()}


# --------------------------------------------------------------------------- bodies, one per kind


class Started(Body):
    """STARTED: the plan and the baseline, so replay needs nothing but the journal."""

    kind = EntryKind.STARTED
    stack: StackName
    service: str
    image: str
    plan: PlanField
    baseline: TrafficState
    forced: bool = False
    """Started although the image was quarantined (``--force``)."""
    revert_of: RolloutId | None = None
    """A fast-track revert: the rollout whose checkpoint it restores."""
    before: Blob | None = None
    """A fast-track revert: the target's state just before it (a restore artifact)."""


class Checkpointed(Body):
    """CHECKPOINT: the target's last good state, taken before the first mutation."""

    kind = EntryKind.CHECKPOINT
    state: Blob
    source: RolloutId | None = Field(default=None, alias="from")
    """A fast-track revert: the rollout that took this checkpoint."""


class HookOutcome(_Model):
    name: str
    ok: bool
    detail: str = ""


class HooksRan(Body):
    """HOOK: the results of one phase's hooks (``key`` says which run: ``step:2:0``, ``pre-rollout``)."""

    kind = EntryKind.HOOK
    key: str
    phase: HookPhase
    results: tuple[HookOutcome, ...] = ()


class _EffectEntry(Body):
    """INTENT and APPLIED: stored flat, as the effect's own fields (``{"action": "set_weight", ...}``)."""

    effect: Effect

    @classmethod
    def from_json(cls, data: JSONObject) -> Body:
        return cls(effect=_EFFECT.validate_python(data))

    def to_json(self) -> JSONObject:
        return _always_set(self.effect)


class Intended(_EffectEntry):
    """INTENT: the effect is about to happen. An intent without APPLIED/ERROR is ambiguous."""

    kind = EntryKind.INTENT


class Applied(_EffectEntry):
    """APPLIED: the effect happened."""

    kind = EntryKind.APPLIED


class Failed(Body):
    """ERROR: the effect of the preceding intent (or the checkpoint) raised."""

    kind = EntryKind.ERROR
    action: EffectKind
    message: str
    type: str | None = None
    """The exception's class name (``StackLocked``)."""


class Check(_Model):
    """One gate of an analysis: its value against its limit."""

    name: str
    verdict: Verdict
    value: float | None = None
    limit: float | None = None
    detail: str = ""


def _evidence(value: object) -> object:
    """Keep only sensible counts: a nonsensical one (errors > requests, negative, not an int) is not evidence."""
    if not isinstance(value, Mapping):
        return None  # an analysis journaled before the counts were recorded
    out: dict[str, dict[str, int]] = {}
    for track, got in value.items():
        if not isinstance(got, Mapping):
            continue
        req, err = got.get("requests"), got.get("errors")
        if (type(req) is int and type(err) is int and req >= 0 and 0 <= err <= req
                and track in Track._value2member_map_):
            out[str(track)] = {"requests": req, "errors": err}
    return out


Traffic = Annotated[Mapping[str, Mapping[str, int]] | None, PlainValidator(_evidence), PlainSerializer(_as_is)]


class Analysed(Body):
    """ANALYSIS: one analysis of a step (or a streaming look that failed it early)."""

    kind = EntryKind.ANALYSIS
    verdict: Verdict
    checks: tuple[Check, ...] = ()
    step: int | None = None
    weight: int | None = None
    label: str | None = None
    window: float | None = None
    """Seconds of evidence the analysis judged."""
    early: bool = False
    """A streaming look within the interval failed the step."""
    traffic: Traffic = None
    """Requests and errors per track (``canary``, ``baseline``): the KPI report's zero-downtime evidence."""
    needed: int | None = None
    """Requests per track the judge needs for a verdict (journaled with inconclusive analyses' reasons)."""

    def counts(self, track: Track) -> tuple[int, int] | None:
        """(requests, errors) the track served, when the analysis recorded sensible counts."""
        got = (self.traffic or {}).get(track.value)
        return None if got is None else (got["requests"], got["errors"])

    @property
    def failed(self) -> tuple[str, ...]:
        """``name value > limit`` for each failed check, for the rollback's reason."""
        out: list[str] = []
        for c in self.checks:
            if c.verdict is not Verdict.FAIL:
                continue
            shown = "no data" if c.value is None else f"{c.value:g}"
            out.append(f"{c.name} {shown}" if c.limit is None else f"{c.name} {shown} > {c.limit:g}")
        return tuple(out)


class Decided(Body):
    """DECISION: advance, hold, promote or roll back, with its reason."""

    kind = EntryKind.DECISION
    decision: Decision
    reason: str = ""
    override: bool = False
    """Promoted without analysis by an operator, or a fast-track revert."""
    step: int | None = None


class OperatorAction(StrEnum):
    """Operator actions written into the journal by ``gantry rollout pause|resume|abort|promote``."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"
    """Always with --skip-analysis: an override, journaled as such."""


class Requested(Body):
    """OPERATOR: an operator's action, written by the CLI of any process."""

    kind = EntryKind.OPERATOR
    action: OperatorAction
    reason: str = ""
    skip_analysis: bool = False


class PhaseSet(Body):
    """PHASE: the rollout entered a phase (the summary row is updated in the same transaction)."""

    kind = EntryKind.PHASE
    phase: Phase
    reason: str | None = None


class Verified(Body):
    """VERIFIED: the live target compared with the journal (after a resume and at the end)."""

    kind = EntryKind.VERIFIED
    ok: bool
    mismatches: tuple[str, ...] = ()


B = TypeVar("B", bound=Body)

_BODIES: dict[EntryKind, type[Body]] = {
    b.kind: b for b in (Started, Checkpointed, HooksRan, Intended, Applied, Failed, Analysed, Decided, Requested,
                        PhaseSet, Verified)}


# --------------------------------------------------------------------------- the edge


@dataclass(frozen=True, slots=True)
class Logged:
    """One journal entry, typed: where it sits (``seq``, ``at``) and what it records (``body``)."""

    seq: int
    rollout_id: RolloutId
    at: float
    body: Body

    @property
    def kind(self) -> EntryKind:
        return self.body.kind


def parse(entry: Entry) -> Logged:
    """The typed form of a stored entry; ``CorruptEntry`` names the entry and the field when it does not fit."""
    try:
        body = _BODIES[entry.kind].from_json(entry.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or len(err["loc"]) > 1) or "payload"
        raise CorruptEntry(f"journal entry {entry.seq} ({entry.kind.value}) of rollout {entry.rollout_id}: "
                           f"{where} {err['msg'].lower()}, but {err.get('input')!r} was found") from None
    return Logged(entry.seq, entry.rollout_id, entry.at, body)


def parse_all(entries: Sequence[Entry]) -> list[Logged]:
    return [parse(e) for e in entries]


class _Reader(Protocol):
    def entries(self, rollout_id: RolloutId, after: int = 0) -> list[Entry]: ...


def read(journal: Journal | _Reader, rollout_id: RolloutId, after: int = 0) -> list[Logged]:
    """A rollout's entries after ``after``, typed (the one place entries are parsed)."""
    return parse_all(journal.entries(rollout_id, after))


def of(entries: Sequence[Logged], body: type[B]) -> list[B]:
    """The bodies of one kind, in journal order."""
    return [e.body for e in entries if isinstance(e.body, body)]

