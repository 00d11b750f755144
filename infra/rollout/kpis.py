"""Delivery KPIs (DORA metrics and the seed's success metrics) computed from rollout journal records.

Pure functions: ``facts`` reduces one rollout's journal entries to the moments the metrics need, and
``compute`` turns the facts of a report window into values per stack, per service and overall, each
beside the seed's target with met or missed. ``gantry report kpis`` (``infra.commands.report``) and the
sandbox demo read the journal and call these; ``infra.rollout.kpi_formats`` renders the result.
The definitions below are the ones written in the README and in the JSON report's metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from statistics import mean, median

from infra.rollout.entries import (
    Analysed,
    Applied,
    Decided,
    EffectKind,
    Failed,
    Logged,
    Promote,
    Revert,
    Started,
    Verified,
    read,
)
from infra.rollout.journal import Journal, RolloutRecord
from infra.rollout.seams import Decision, Phase, RolloutId, Track, Verdict

DAY = 86_400.0
WEEK = 7 * DAY


class Op(StrEnum):
    """How a value is compared with its target."""

    BELOW = "<"
    ABOVE = ">"
    EQUAL = "="


class Unit(StrEnum):
    SECONDS = "seconds"
    RATIO = "ratio"
    """A fraction in 0..1 (rendered as a percentage)."""
    PER_DAY = "deployments/day"


@dataclass(frozen=True, slots=True)
class Target:
    """A seed target: ``value op threshold`` means met. ``seed`` is the seed's own wording."""

    op: Op
    threshold: float
    seed: str

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        match self.op:
            case Op.BELOW:
                return value < self.threshold
            case Op.ABOVE:
                return value > self.threshold
            case Op.EQUAL:
                return value == self.threshold


@dataclass(frozen=True, slots=True)
class MetricDef:
    key: str
    title: str
    unit: Unit
    target: Target
    definition: str
    how: str


METRICS: tuple[MetricDef, ...] = (
    MetricDef(
        "deployment_frequency", "Deployment frequency", Unit.PER_DAY,
        Target(Op.ABOVE, DAY / (15 * 60), "< 15 minutes per deployment"),
        "Promoted rollouts per day over the report period.",
        "Rollouts started in the window that were promoted, divided by the period in days. The period is the "
        "window, starting no earlier than the journal's first rollout. The seed's '< 15 minutes per deployment' "
        "is compared as more than 96 deployments per day. Fast-track reverts are not deployments."),
    MetricDef(
        "lead_time", "Lead time for changes", Unit.SECONDS,
        Target(Op.BELOW, 2 * 3600, "< 2 hours from commit to production"),
        "Lead time runs from commit time to promotion.",
        "Median over promoted rollouts with a commit time, of the time from the commit time recorded at "
        "`rollout start` to the journal's `applied promote` entry. Rollouts without a commit time are "
        "counted as `without_commit_time` and left out."),
    MetricDef(
        "mttr", "Mean time to recovery", Unit.SECONDS,
        Target(Op.BELOW, 5 * 60, "< 5 minutes for rollback"),
        "MTTR runs from the first failing analysis to stable serving 100%.",
        "Mean over rolled-back rollouts with at least one failing analysis, of the time from the first "
        "`analysis` entry with verdict fail to the `applied revert` entry (the stable version serves 100% "
        "again). Rollbacks whose revert failed never recovered and are counted as `unrecovered`."),
    MetricDef(
        "change_failure_rate", "Change failure rate", Unit.RATIO,
        Target(Op.BELOW, 0.05, "< 5%"),
        "Change failure rate counts rollbacks plus failed promotions over all rollouts.",
        "Finished rollouts (fast-track reverts excluded) that were rolled back, or whose promotion failed (the "
        "promote action raised, the target did not show the promoted version at verification, or a later "
        "`gantry rollback --to` reverted it), each counted once, over all finished rollouts."),
    MetricDef(
        "deployment_success_rate", "Deployment success rate", Unit.RATIO,
        Target(Op.ABOVE, 0.995, "> 99.5%"),
        "Promoted rollouts whose live target matched the journal, over all finished rollouts.",
        "Finished rollouts (fast-track reverts excluded) that ended promoted without a verification mismatch, "
        "over all finished rollouts."),
    MetricDef(
        "rollback_rate", "Rollback rate", Unit.RATIO,
        Target(Op.BELOW, 0.02, "< 2%"),
        "Rollouts that decided to roll back, over all finished rollouts.",
        "Finished rollouts (fast-track reverts excluded) with a rollback decision (failed analyses, failed "
        "hooks or target actions, aborts, ambiguity on resume), over all finished rollouts."),
    MetricDef(
        "rollback_success_rate", "Rollback success rate", Unit.RATIO,
        Target(Op.EQUAL, 1.0, "100%"),
        "Rollbacks that restored the checkpoint, over all rollbacks.",
        "Finished rollouts with a rollback decision, fast-track reverts included, that ended rolled back "
        "without a verification mismatch, over all of them. A revert that raised ends the rollout failed."),
    MetricDef(
        "rollback_time", "Rollback time", Unit.SECONDS,
        Target(Op.BELOW, 2 * 60, "< 2 minutes"),
        "Time from the rollback decision to stable serving 100%.",
        "Mean over rollbacks whose revert was applied (fast-track reverts included, no-op reverts left out), "
        "of the time from the first `decision rollback` entry to the `applied revert` entry."),
    MetricDef(
        "deployment_time", "Deployment time", Unit.SECONDS,
        Target(Op.BELOW, 10 * 60, "< 10 minutes"),
        "Time from rollout start to promotion.",
        "Mean over promoted rollouts of the time from the `started` entry to the `applied promote` entry, "
        "including any time a crashed rollout waited to be resumed."),
    MetricDef(
        "zero_downtime", "Zero-downtime achievement", Unit.RATIO,
        Target(Op.ABOVE, 0.999, "> 99.9%"),
        "Zero-downtime comes from the error counts the analyses saw on the stable version during rollouts.",
        "1 - (errors / requests) summed over every analysis of the window's rollouts, counting the stable "
        "(baseline) version's requests each analysis read over its own window. Analyses that read no stable "
        "counts (an unreadable baseline) are left out."),
)
BY_KEY: Mapping[str, MetricDef] = {m.key: m for m in METRICS}


# --------------------------------------------------------------------------- per rollout


@dataclass(frozen=True, slots=True)
class RolloutFacts:
    """The moments of one rollout that the metrics need, read from its journal entries alone."""

    id: RolloutId
    stack: str
    service: str
    started_at: float
    phase: Phase
    committed_at: float | None = None
    revert_of: RolloutId | None = None
    """Set on a fast-track revert (``gantry rollback``): the rollout whose checkpoint it restored."""
    promoted_at: float | None = None
    promote_failed: bool = False
    verified: bool | None = None
    rollback_decided_at: float | None = None
    reverted_at: float | None = None
    revert_noop: bool = False
    first_failed_analysis_at: float | None = None
    stable_requests: int = 0
    stable_errors: int = 0

    @property
    def finished(self) -> bool:
        return self.phase.terminal

    @property
    def is_change(self) -> bool:
        """A deployment of a change (every rollout except a fast-track revert)."""
        return self.revert_of is None

    @property
    def rolled_back(self) -> bool:
        return self.rollback_decided_at is not None


def facts(record: RolloutRecord, entries: Sequence[Logged]) -> RolloutFacts:
    """Reduce a rollout's journal (its entries in order) to its facts."""
    first = entries[0].body if entries else None
    revert_of = first.revert_of if isinstance(first, Started) else None
    promoted_at = rollback_at = reverted_at = failed_at = None
    promote_failed = noop = False
    verified: bool | None = None
    requests = errors = 0
    for e in entries:
        match e.body:
            case Applied(effect=Promote()) if promoted_at is None:
                promoted_at = e.at
            case Applied(effect=Revert() as revert) if reverted_at is None:
                reverted_at, noop = e.at, revert.noop
            case Failed(action=EffectKind.PROMOTE):
                promote_failed = True
            case Decided(decision=Decision.ROLLBACK) if rollback_at is None:
                rollback_at = e.at
            case Analysed() as analysed:
                if analysed.verdict is Verdict.FAIL and failed_at is None:
                    failed_at = e.at
                # Counts that make no sense were dropped when the entry was read: they are not evidence.
                stable = analysed.counts(Track.BASELINE)
                if stable is not None:
                    requests, errors = requests + stable[0], errors + stable[1]
            case Verified(ok=ok):
                verified = ok
    return RolloutFacts(
        id=record.id, stack=record.stack, service=record.service, started_at=record.created_at, phase=record.phase,
        committed_at=record.provenance.committed_at, revert_of=revert_of,
        promoted_at=promoted_at, promote_failed=promote_failed, verified=verified, rollback_decided_at=rollback_at,
        reverted_at=reverted_at, revert_noop=noop, first_failed_analysis_at=failed_at,
        stable_requests=requests, stable_errors=errors)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One metric in one scope. ``value`` None: no data (``met`` None). ``detail``: its counts and spread."""

    key: str
    value: float | None
    samples: int
    met: bool | None
    detail: Mapping[str, float | int | None]

    @property
    def definition(self) -> MetricDef:
        return BY_KEY[self.key]


class ScopeKind(StrEnum):
    OVERALL = "overall"
    STACK = "stack"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    stack: str | None
    service: str | None
    rollouts: int
    in_progress: int
    metrics: tuple[MetricValue, ...]

    @property
    def label(self) -> str:
        if self.kind is ScopeKind.OVERALL:
            return "overall"
        return str(self.stack) if self.kind is ScopeKind.STACK else f"{self.stack}/{self.service}"

    def metric(self, key: str) -> MetricValue:
        return next(m for m in self.metrics if m.key == key)


@dataclass(frozen=True, slots=True)
class Week:
    """The overall metrics of the rollouts started in one ISO week (the HTML report's trend charts)."""

    start: float
    label: str
    metrics: tuple[MetricValue, ...]

    def metric(self, key: str) -> MetricValue:
        return next(m for m in self.metrics if m.key == key)


@dataclass(frozen=True, slots=True)
class KpiReport:
    since: float
    until: float
    period_start: float
    """``since``, or the journal's first rollout when the journal is younger than the window."""
    filters: Mapping[str, str | None]
    scopes: tuple[Scope, ...]
    weeks: tuple[Week, ...]

    @property
    def overall(self) -> Scope:
        return self.scopes[0]


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _metric(key: str, value: float | None, samples: int, **detail: float | int | None) -> MetricValue:
    return MetricValue(key, value, samples, BY_KEY[key].target.met(value), detail)


def _duration(key: str, values: Sequence[float], headline: Callable[[Sequence[float]], float],
              **detail: float | int | None) -> MetricValue:
    if not values:
        return _metric(key, None, 0, mean=None, median=None, max=None, **detail)
    return _metric(key, headline(values), len(values), mean=mean(values), median=median(values),
                   max=max(values), **detail)


def metrics(rollouts: Sequence[RolloutFacts], *, period_days: float, reverted_later: frozenset[RolloutId]
            ) -> tuple[MetricValue, ...]:
    """Every metric over one set of rollouts. ``reverted_later``: promoted rollouts a later fast-track
    revert undid (failed promotions, for the change failure rate)."""
    finished = [f for f in rollouts if f.finished]
    changes = [f for f in finished if f.is_change]
    promoted = [f for f in changes if f.phase is Phase.PROMOTED and f.promoted_at is not None]
    rollbacks = [f for f in finished if f.rolled_back]

    frequency = None if period_days <= 0 else len(promoted) / period_days
    with_time = [f for f in promoted if f.committed_at is not None]
    lead = [p - c for f in with_time if (p := f.promoted_at) is not None and (c := f.committed_at) is not None]
    incidents = [f for f in changes if f.rolled_back and f.first_failed_analysis_at is not None]
    recovered = [f for f in incidents if f.reverted_at is not None and not f.revert_noop]
    mttr = [r - a for f in recovered if (r := f.reverted_at) is not None and (a := f.first_failed_analysis_at)
            is not None]
    failed_changes = [f for f in changes if f.rolled_back or f.promote_failed or f.id in reverted_later
                      or (f.phase is Phase.PROMOTED and f.verified is False)]
    succeeded = [f for f in changes if f.phase is Phase.PROMOTED and f.verified is not False]
    rolled_back_changes = [f for f in changes if f.rolled_back]
    restored = [f for f in rollbacks if f.phase is Phase.ROLLED_BACK and f.verified is not False]
    timed = [f for f in rollbacks if f.reverted_at is not None and not f.revert_noop]
    rollback_times = [r - d for f in timed if (r := f.reverted_at) is not None and (d := f.rollback_decided_at)
                      is not None]
    deploy_times = [p - f.started_at for f in promoted if (p := f.promoted_at) is not None]
    requests = sum(f.stable_requests for f in rollouts)
    errors = sum(f.stable_errors for f in rollouts)

    return (
        _metric("deployment_frequency", frequency, len(promoted), deployments=len(promoted),
                period_days=period_days,
                minutes_per_deployment=None if not promoted else period_days * 1440 / len(promoted)),
        _duration("lead_time", lead, median, promoted=len(promoted), without_commit_time=len(promoted) - len(lead)),
        _duration("mttr", mttr, mean, incidents=len(incidents), unrecovered=len(incidents) - len(recovered)),
        _metric("change_failure_rate", _ratio(len(failed_changes), len(changes)), len(changes),
                failed=len(failed_changes), rollouts=len(changes)),
        _metric("deployment_success_rate", _ratio(len(succeeded), len(changes)), len(changes),
                succeeded=len(succeeded), rollouts=len(changes)),
        _metric("rollback_rate", _ratio(len(rolled_back_changes), len(changes)), len(changes),
                rolled_back=len(rolled_back_changes), rollouts=len(changes)),
        _metric("rollback_success_rate", _ratio(len(restored), len(rollbacks)), len(rollbacks),
                restored=len(restored), rollbacks=len(rollbacks)),
        _duration("rollback_time", rollback_times, mean, rollbacks=len(rollbacks)),
        _duration("deployment_time", deploy_times, mean),
        _metric("zero_downtime", None if requests == 0 else 1 - errors / requests, requests,
                stable_requests=requests, stable_errors=errors),
    )


def _week_start(t: float) -> float:
    day = datetime.fromtimestamp(t, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day - timedelta(days=day.weekday())).timestamp()


def compute(all_rollouts: Iterable[RolloutFacts], *, since: float, until: float,
            stack: str | None = None, service: str | None = None,
            only: frozenset[RolloutId] | None = None) -> KpiReport:
    """The report over rollouts started in ``[since, until]`` (and in ``only`` when given), filtered by stack
    and service. ``all_rollouts`` is the whole journal: fast-track reverts outside the window still mark the
    rollouts they undid as failed changes, and the journal's first rollout bounds the period."""
    everything = list(all_rollouts)
    reverted_later = frozenset(f.revert_of for f in everything if f.revert_of is not None)
    first = min((f.started_at for f in everything if only is None or f.id in only), default=since)
    period_start = min(max(since, first), until)
    chosen = [f for f in everything
              if since <= f.started_at <= until and (only is None or f.id in only)
              and (stack is None or f.stack == stack) and (service is None or f.service == service)]
    chosen.sort(key=lambda f: (f.started_at, f.id))
    days = (until - period_start) / DAY

    def scope(kind: ScopeKind, st: str | None, svc: str | None, members: list[RolloutFacts]) -> Scope:
        return Scope(kind, st, svc, len(members), sum(1 for f in members if not f.finished),
                     metrics(members, period_days=days, reverted_later=reverted_later))

    scopes = [scope(ScopeKind.OVERALL, None, None, chosen)]
    for st in sorted({f.stack for f in chosen}):
        in_stack = [f for f in chosen if f.stack == st]
        scopes.append(scope(ScopeKind.STACK, st, None, in_stack))
        for svc in sorted({f.service for f in in_stack}):
            scopes.append(scope(ScopeKind.SERVICE, st, svc, [f for f in in_stack if f.service == svc]))

    weeks: list[Week] = []
    start = _week_start(period_start)
    while start <= until and chosen:
        end = start + WEEK
        members = [f for f in chosen if start <= f.started_at < end]
        span = (min(end, until) - max(start, period_start)) / DAY
        label = datetime.fromtimestamp(start, UTC).strftime("%G-W%V")
        weeks.append(Week(start, label, metrics(members, period_days=span, reverted_later=reverted_later)))
        start = end
    filters: dict[str, str | None] = {"stack": stack, "service": service}
    return KpiReport(since, until, period_start, filters, tuple(scopes), tuple(weeks))


# --------------------------------------------------------------------------- input


_UNITS = {"m": 60.0, "h": 3600.0, "d": DAY, "w": WEEK}


def parse_since(text: str, now: float) -> float:
    """``--since``: a look-back such as 30d, 12h, 2w or 90m, or an ISO 8601 date/time (UTC if no offset)."""
    value = text.strip()
    if value and value[-1] in _UNITS and value[:-1].isdigit() and 0 < int(value[:-1]) <= 100_000:
        return now - int(value[:-1]) * _UNITS[value[-1]]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"--since must be a look-back such as 30d, 12h, 2w or 90m, or an ISO 8601 date, "
                         f"but {text[:80]!r} was given")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.timestamp() > now:
        raise ValueError(f"--since must not be in the future, but {text[:80]!r} was given")
    return parsed.timestamp()


def load(journal: Journal) -> list[RolloutFacts]:
    """The facts of every rollout in the journal (oldest first)."""
    records = journal.history(None, limit=2**62)
    return [facts(r, read(journal, r.id)) for r in reversed(records)]
