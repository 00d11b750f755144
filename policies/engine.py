"""The policy engine: evaluates every rule over a stack's resources, applies levels and waivers.

``evaluate_all`` is the one evaluation function: ``gantry check`` reaches it through ``check_rendered`` (the
command renders and passes the graph in) and every CrossGuard policy through ``policies.crossguard``. A rule that
raises becomes an ``error`` finding for that rule; the other rules still run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policies.config import PolicyConfig, StackPolicy, build_settings
from policies.engine_modes import BridgeMode
from policies.model import Level, Outcome, Resource, Settings, SourceLocation, StackOutcome, State, TierName
from policies.pack import RULES, WAIVER_EXPIRED, WAIVER_INVALID, Rule
from policies.props import provider_config
from policies.rendered import RenderedStack
from policies.waivers import Waiver, find, tag_waivers

if TYPE_CHECKING:
    from policies.bridge.findings import BridgeSummary
    from policies.bridge.runner import CheckovSession

STACK_TYPE = "pulumi:pulumi:Stack"


WAIVER_TYPE = "gantry:policy:Waiver"


class FindingStatus(StrEnum):
    VIOLATION = "violation"
    WAIVED = "waived"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported result: a violation, a waived violation, or a rule that raised."""

    policy: str
    status: FindingStatus
    level: Level
    urn: str
    type: str
    name: str
    message: str
    waiver: str | None = None
    """The waiver's reason and source, for waived findings."""
    location: SourceLocation | None = None
    """Where the program constructed the resource, when known (reports point there)."""
    check_name: str | None = None
    """Checkov's name for the check, for findings the Checkov bridge produced (``policy`` is its CKV id)."""
    aliases: tuple[str, ...] = ()
    """Checkov check ids that judged the same thing as this Gantry rule (reported once, here)."""
    source: str = "gantry"
    """Who judged: ``gantry`` (the pack's rules) or ``checkov`` (the bridge)."""

    @property
    def blocking(self) -> bool:
        """Mandatory violations and mandatory rule errors fail the check (fail closed)."""
        return self.level is Level.MANDATORY and self.status is not FindingStatus.WAIVED

    @property
    def label(self) -> str:
        """The policy id as people read it: ``image-pinned (CKV_K8S_14)`` when Checkov agreed."""
        return f"{self.policy} ({', '.join(self.aliases)})" if self.aliases else self.policy

    def to_json(self) -> dict[str, str | int | list[str] | None]:
        return {"policy": self.policy, "status": self.status.value, "level": self.level.value, "urn": self.urn,
                "type": self.type, "name": self.name, "message": self.message, "waiver": self.waiver,
                "file": self.location.file if self.location else None,
                "line": self.location.line if self.location else None,
                "source": self.source, "checkName": self.check_name, "aliases": list(self.aliases)}


@dataclass(slots=True)
class StackReport:
    """Everything ``gantry check`` learned about one stack."""

    project: str
    stack: str
    tier: TierName
    resources: int
    findings: list[Finding]
    rules: int
    stack_file: Path | None = None
    program_file: Path | None = None
    seconds: float = 0.0
    levels: Mapping[str, Level] = field(default_factory=dict)
    project_root: Path | None = None
    error: str | None = None
    """Set when the program raised: the graph was partial and only what it registered was checked."""
    error_location: SourceLocation | None = None
    error_traceback: str = ""
    tier_source: str = ""
    """Why this tier: ``--tier``, ``gantry:tier`` or ``stack name``."""
    bridge: BridgeSummary | None = None

    @property
    def partial(self) -> bool:
        return self.error is not None

    def count(self, status: FindingStatus, level: Level | None = None) -> int:
        return sum(1 for f in self.findings if f.status is status and (level is None or f.level is level))

    @property
    def blocking(self) -> int:
        return sum(1 for f in self.findings if f.blocking)

    @property
    def passed(self) -> bool:
        return self.blocking == 0 and not self.partial


def _subject(r: Resource) -> tuple[str, str, str]:
    return r.urn, r.type, r.name


def run_rule(rule: Rule, resources: Sequence[Resource], settings: Settings) -> list[tuple[Resource | None, Outcome]]:
    """Apply one rule; exceptions propagate to the caller, which records them per subject."""
    if rule.resource is not None:
        return [(r, rule.resource(r, settings)) for r in resources]
    assert rule.stack is not None
    by_urn = {r.urn: r for r in resources}
    results: list[StackOutcome] = rule.stack(resources, settings)
    return [(by_urn.get(o.urn) if o.urn else None, o.outcome) for o in results]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation decided: the findings, and which (policy, URN) pairs were not applicable."""

    findings: list[Finding]
    not_applicable: frozenset[tuple[str, str]] = frozenset()


def evaluate(
    resources: Sequence[Resource],
    settings: Settings,
    levels: Mapping[str, Level],
    waivers: Sequence[Waiver] = (),
    *,
    today: dt.date | None = None,
    rules: Iterable[Rule] = RULES,
    stack_urn: str = "",
) -> list[Finding]:
    """Evaluate rules over one stack's resources; returns violations, waived violations and errors."""
    return evaluate_all(resources, settings, levels, waivers, today=today, rules=rules, stack_urn=stack_urn).findings


def evaluate_all(
    resources: Sequence[Resource],
    settings: Settings,
    levels: Mapping[str, Level],
    waivers: Sequence[Waiver] = (),
    *,
    today: dt.date | None = None,
    rules: Iterable[Rule] = RULES,
    stack_urn: str = "",
    propagate: tuple[type[BaseException], ...] = (),
) -> Evaluation:
    """The one evaluation function: ``gantry check`` calls it over the stack, and every CrossGuard policy calls
    it over what the analyzer hands that policy, so both reach the same verdicts.

    Rules judge; waivers (file and tag) turn violations into waived findings; a tag that cannot be read is a
    mandatory ``waiver-invalid`` finding and a waiver past its date that matches a resource (or the stack) is
    a mandatory ``waiver-expired`` finding. A rule that raises becomes an ``error`` finding, except for the
    exception types in ``propagate`` (CrossGuard's unknown-value error, which the analyzer handles).
    """
    today = today or dt.date.today()
    stack_subject = (stack_urn, STACK_TYPE, stack_urn.rsplit("::", 1)[-1] if stack_urn else "stack")
    findings: list[Finding] = []
    not_applicable: set[tuple[str, str]] = set()
    resource_waivers: dict[str, list[Waiver]] = {}
    for r in resources:
        accepted, problems = tag_waivers(r)
        resource_waivers[r.urn] = accepted
        for p in problems:
            findings.append(Finding(WAIVER_INVALID, FindingStatus.VIOLATION, Level.MANDATORY, *_subject(r), p.message))
    for rule in rules:
        level = levels.get(rule.id, rule.level)
        if level is Level.DISABLED:
            continue
        if rule.resource is not None:
            for r in resources:
                try:
                    outcome = rule.resource(r, settings)
                except propagate:
                    raise
                except Exception as exc:  # a broken rule must not hide the others
                    findings.append(_error(rule, level, _subject(r), exc))
                    continue
                if outcome.state is State.NOT_APPLICABLE:
                    not_applicable.add((rule.id, r.urn))
                findings += _judge(rule, level, _subject(r), outcome, waivers, resource_waivers, today)
            continue
        try:
            results = run_rule(rule, resources, settings)
        except propagate:
            raise
        except Exception as exc:
            findings.append(_error(rule, level, stack_subject, exc))
            continue
        for subject, outcome in results:
            subj = _subject(subject) if subject is not None else stack_subject
            findings += _judge(rule, level, subj, outcome, waivers, resource_waivers, today)
    # An expired waiver that still matches this stack is a finding of its own, whatever it covered: a waiver
    # that covered a finding matched that finding's subject, which is a resource or the stack.
    urns = [r.urn for r in resources] + ([stack_urn] if stack_urn else [])
    for w in [*waivers, *(w for ws in resource_waivers.values() for w in ws)]:
        if w.expired(today) and any(w.matches(u) for u in urns):
            findings.append(Finding(WAIVER_EXPIRED, FindingStatus.VIOLATION, Level.MANDATORY, w.urn,
                                    WAIVER_TYPE, w.source, f"waiver of {w.policy} for {w.urn} expired on {w.expires} "
                                              f"({w.source}): {w.reason}; renew it with a new date or fix the "
                                              "finding"))
    located = {r.urn: r.location for r in resources if r.location is not None}
    if located:
        findings = [replace(f, location=located[f.urn]) if f.urn in located and f.location is None else f
                    for f in findings]
    return Evaluation(_dedupe(findings), frozenset(not_applicable))


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.policy, f.urn, f.status.value, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _error(rule: Rule, level: Level, subject: tuple[str, str, str], exc: Exception) -> Finding:
    detail = " ".join(str(exc).split()) or "no message"
    return Finding(rule.id, FindingStatus.ERROR, level, *subject,
                   f"rule {rule.id} raised {type(exc).__name__}: {detail}")


def _judge(rule: Rule, level: Level, subject: tuple[str, str, str], outcome: Outcome, waivers: Sequence[Waiver],
           resource_waivers: Mapping[str, list[Waiver]], today: dt.date) -> list[Finding]:
    if outcome.state is not State.NON_COMPLIANT:
        return []
    urn = subject[0]
    candidates = [*resource_waivers.get(urn, []), *waivers]
    waiver = find(candidates, rule.id, urn, today)
    if waiver is not None and not waiver.expired(today):
        return [Finding(rule.id, FindingStatus.WAIVED, level, *subject, outcome.message,
                        waiver=f"{waiver.reason} ({waiver.source}"
                               f"{', until ' + waiver.expires.isoformat() if waiver.expires else ''})")]
    return [Finding(rule.id, FindingStatus.VIOLATION, level, *subject, outcome.message)]


# --------------------------------------------------------------------------- rendered graphs


def resources_from_render(result: RenderedStack) -> list[Resource]:
    """Rule views of a rendered graph; providers lend their props (default tags, namespace) to resources."""
    by_urn = {r.urn: r for r in result.resources}
    views = []
    for r in result.resources:
        provider_props: Mapping[str, object] = {}
        if r.provider:
            # Provider references are "<urn>::<id>"; the URN itself contains "::", so strip the last part.
            ref = r.provider if r.provider in by_urn else r.provider.rsplit("::", 1)[0]
            prov = by_urn.get(ref)
            if prov is not None:
                provider_props = provider_config(prov.inputs)
        location = SourceLocation(r.location.file, r.location.line) if r.location else None
        views.append(Resource(urn=r.urn, type=r.type, name=r.name, props=r.inputs, parent=r.parent,
                              dependencies=tuple(r.dependencies), provider_props=provider_props,
                              ignore_changes=tuple(r.ignore_changes), protect=r.protect, custom=r.custom,
                              location=location))
    return views


@dataclass(frozen=True, slots=True)
class StackInputs:
    """What the stack file says about policy: its tier and ``gantry:policy`` block."""

    tier: TierName | None
    policy: StackPolicy


def stack_inputs(config_dir: Path, stack: str) -> StackInputs:
    """Read ``gantry:tier`` and ``gantry:policy`` from the stack file; foreign projects have neither."""
    from infra.config import ConfigError, PolicySettings, namespace_values, read_stack_file

    sf = read_stack_file(stack, config_dir)
    values = namespace_values(sf.raw)
    tier_raw = values.get("tier")
    tier: TierName | None = None
    if tier_raw is not None:
        if not isinstance(tier_raw, str) or tier_raw not in {t.value for t in TierName}:
            from infra.documents import clip

            raise ConfigError(str(sf.path), [f"gantry:tier must be one of dev, staging, prod, but "
                                             f"{clip(repr(tier_raw))} was given"])
        tier = TierName(str(tier_raw))
    raw_policy = values.get("policy") or {}
    try:
        ps = PolicySettings.model_validate(raw_policy)
    except Exception as exc:  # pydantic's ValidationError; keep the message, drop the traceback
        raise ConfigError(str(sf.path), [f"gantry:policy is invalid: {' '.join(str(exc).split())}"]) from None
    return StackInputs(tier, StackPolicy(
        monthly_budget_usd=ps.monthly_budget_usd,
        supported_versions=tuple(ps.supported_versions) if ps.supported_versions else None,
        public_load_balancers=tuple(ps.public_load_balancers) if ps.public_load_balancers else None,
    ))


def tier_from_stack_name(stack: str) -> TierName:
    """Foreign projects without ``gantry:tier``: ``prod*``/``production*`` -> prod, ``stag*`` -> staging, else dev."""
    name = stack.rsplit("/", 1)[-1].lower()  # org/project/stack names
    if name.startswith(("prod", "production")):
        return TierName.PROD
    if name.startswith("stag"):
        return TierName.STAGING
    return TierName.DEV


def resolve_tier(stack: str, flag: TierName | None, configured: TierName | None) -> tuple[TierName, str]:
    """The tier in force and why: ``--tier``, then ``gantry:tier`` in the stack file, then the stack's name."""
    if flag is not None:
        return flag, "--tier"
    if configured is not None:
        return configured, "gantry:tier"
    return tier_from_stack_name(stack), "stack name"


def start_bridge(config: PolicyConfig, tier: TierName, bridge: BridgeMode
                 ) -> tuple[CheckovSession | None, BridgeSummary | None]:
    """Start Checkov (before the render, so its imports overlap it on the second core), or say why not.

    Raises ``BridgeUnavailable`` when ``bridge`` is ``on`` and Checkov is not installed.
    """
    from policies.bridge.findings import BridgeSummary
    from policies.bridge.runner import BridgeUnavailable, CheckovSession

    if bridge is BridgeMode.OFF:
        return None, BridgeSummary(status="off (--checkov off)")
    if not config.bridge_enabled(tier):
        return None, BridgeSummary(status=f"off (policy config disables it in {tier.value})")
    try:
        return CheckovSession().start(), None
    except BridgeUnavailable as exc:
        if bridge is BridgeMode.ON:
            raise
        return None, BridgeSummary(status=f"unavailable: {exc}")


def check_rendered(
    result: RenderedStack,
    stack: str,
    config: PolicyConfig,
    waivers: Sequence[Waiver],
    *,
    tier: TierName,
    tier_source: str,
    policy: StackPolicy,
    session: CheckovSession | None = None,
    summary: BridgeSummary | None = None,
    today: dt.date | None = None,
    project_root: Path | None = None,
    program_file: Path | None = None,
    started: float | None = None,
) -> StackReport:
    """Evaluate the pack (and Checkov's catalogue, when ``session`` is given) over a rendered stack.

    The caller renders (``gantry check`` does, in the commands layer), so this package never imports the
    renderer. A program that raised after registering resources still gets every rule (and the bridge)
    over what it registered; the report is then partial (``error`` set) and never passes.
    """
    started = time.perf_counter() if started is None else started
    today = today or dt.date.today()
    views = [v for v in resources_from_render(result) if v.type != STACK_TYPE]
    settings = build_settings(config, tier, policy)
    levels = config.levels(tier)
    stack_urn = next((r.urn for r in result.resources if r.type == STACK_TYPE),
                     f"urn:pulumi:{stack}::{result.project}::{STACK_TYPE}::{result.project}-{stack}")
    findings = evaluate(views, settings, levels, waivers, today=today, stack_urn=stack_urn)
    if session is not None:
        findings, summary = run_bridge(session, result.resources, views, findings, config, tier, waivers,
                                       today, stack_urn)
    rules = sum(1 for lv in levels.values() if lv is not Level.DISABLED)
    failure = result.error
    return StackReport(project=result.project, stack=stack, tier=tier, resources=len(views),
                       findings=findings, rules=rules, stack_file=result.stack_file, program_file=program_file,
                       seconds=time.perf_counter() - started, levels=levels, project_root=project_root,
                       error=result.error_message() if failure else None,
                       error_location=SourceLocation(failure.location.file, failure.location.line)
                       if failure and failure.location else None,
                       error_traceback=failure.traceback if failure else "",
                       tier_source=tier_source, bridge=summary)


def run_bridge(session: Any, rendered: Sequence[Any], views: Sequence[Resource], findings: list[Finding],
               config: PolicyConfig, tier: TierName, waivers: Sequence[Waiver], today: dt.date,
               stack_urn: str) -> tuple[list[Finding], BridgeSummary]:
    """Translate, scan and merge; a Checkov run that fails is a rule error (mandatory in prod: fail closed)."""
    from policies.bridge.catalog import BRIDGE_ID
    from policies.bridge.findings import BridgeSummary, merge
    from policies.bridge.runner import BridgeFailed, ScanResult
    from policies.bridge.translate import nodes_from_render, translate

    bundle = translate(nodes_from_render(rendered))
    if not bundle.files:
        session.close()
        return findings, BridgeSummary(status="ran", skipped_types=dict(bundle.skipped))
    try:
        scan: ScanResult = session.scan(bundle)
    except BridgeFailed as exc:
        level = Level.MANDATORY if tier is TierName.PROD else Level.ADVISORY
        name = stack_urn.rsplit("::", 1)[-1] if stack_urn else "stack"
        error = Finding(BRIDGE_ID, FindingStatus.ERROR, level, stack_urn, STACK_TYPE, name,
                        f"the Checkov bridge failed: {exc}", source="checkov")
        return [*findings, error], BridgeSummary(status=f"failed: {exc}")
    own_waivers = {v.urn: tag_waivers(v)[0] for v in views}
    return merge(findings, scan, bundle, views, lambda cid: config.check_level(cid, tier), waivers, own_waivers,
                 today)


__all__ = ["BridgeMode", "Evaluation", "Finding", "FindingStatus", "RenderedStack", "StackReport", "check_rendered",
           "evaluate", "evaluate_all", "resolve_tier", "resources_from_render", "start_bridge", "tier_from_stack_name"]
