"""CrossGuard adapter: turns the pack's pure rules into ``pulumi_policy`` policies.

Imported by ``policies/__main__.py`` (which hands the policies to ``PolicyPack`` and so starts the gRPC
server) and by the tests, which call the built policies directly without any server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies.config import PolicyConfig, RuleConfig, StackPolicy, build_settings, config_schema, validate_options
from policies.engine import STACK_TYPE, Evaluation, Finding, FindingStatus, evaluate_all
from policies.model import Level, Resource, Settings, TierName
from policies.pack import BY_ID, RULES, WAIVER_EXPIRED, WAIVER_INVALID, Rule
from policies.props import provider_config
from policies.waivers import Waiver, find, tag_waivers

_LEVELS = {Level.ADVISORY: EnforcementLevel.ADVISORY, Level.MANDATORY: EnforcementLevel.MANDATORY,
           Level.DISABLED: EnforcementLevel.DISABLED}


def pack_tier() -> TierName:
    """The tier whose levels the pack enforces: $GANTRY_TIER, else the stack's gantry:tier, else prod."""
    raw = os.environ.get("GANTRY_TIER") or _stack_config("tier")
    return TierName(raw) if raw in {t.value for t in TierName} else TierName.PROD


def stack_policy() -> StackPolicy:
    """The stack's ``gantry:policy`` block, which the engine passes to analyzers as stack config."""
    raw = _stack_config("policy")
    doc = json.loads(raw) if isinstance(raw, str) and raw.startswith("{") else {}
    versions, lbs, budget = doc.get("supportedVersions"), doc.get("publicLoadBalancers"), doc.get("monthlyBudgetUsd")
    return StackPolicy(
        monthly_budget_usd=float(budget) if isinstance(budget, int | float) else None,
        supported_versions=tuple(str(v) for v in versions) if isinstance(versions, list) else None,
        public_load_balancers=tuple(str(v) for v in lbs) if isinstance(lbs, list) else None,
    )


def _stack_config(key: str) -> str | None:
    try:
        import pulumi

        return pulumi.Config("gantry").get(key)
    except Exception:  # no engine config outside `pulumi preview`; the defaults apply
        return None


def _view(urn: str, type_: str, name: str, props: Mapping[str, Any], provider_props: Mapping[str, Any] | None,
          ignore_changes: Sequence[str], protect: bool, parent: str | None = None,
          dependencies: Sequence[str] = (), custom: bool = True) -> Resource:
    return Resource(urn=urn, type=type_, name=name, props=props, parent=parent, dependencies=tuple(dependencies),
                    provider_props=provider_config(provider_props or {}), ignore_changes=tuple(ignore_changes or ()),
                    protect=bool(protect), custom=custom)


def resource_from_args(args: ResourceValidationArgs) -> Resource:
    return _view(args.urn, args.resource_type, args.name, args.props,
                 args.provider.props if args.provider is not None else None,
                 args.opts.ignore_changes, bool(args.opts.protect))


def resource_from_policy_resource(r: PolicyResource) -> Resource:
    # CrossGuard does not say which resources are components; they are the ones without a provider.
    return _view(r.urn, r.resource_type, r.name, r.props, r.provider.props if r.provider is not None else None,
                 r.opts.ignore_changes, bool(r.opts.protect), parent=r.parent.urn if r.parent else None,
                 dependencies=[d.urn for d in r.dependencies],
                 custom=r.provider is not None or r.resource_type.startswith("pulumi:providers:"))


class _SettingsCache:
    """Settings per distinct ``--policy-pack-config`` properties, so each call does not rebuild them."""

    def __init__(self, config: PolicyConfig, tier: TierName, stack: StackPolicy) -> None:
        self.config, self.tier, self.stack = config, tier, stack
        self._cache: dict[str, Settings] = {}

    def get(self, policy: str, overrides: Mapping[str, Any]) -> Settings:
        key = json.dumps([policy, overrides], sort_keys=True, default=str)
        if key not in self._cache:
            rules = dict(self.config.rules)
            base = rules.get(policy, RuleConfig())
            props = {**base.properties, **{k: v for k, v in overrides.items() if k not in ("level", "tiers")}}
            options = validate_options(policy, props, "--policy-pack-config") if policy in BY_ID else None
            rules[policy] = RuleConfig(base.level, base.tiers, props, options)
            self._cache[key] = build_settings(PolicyConfig(rules, self.config.source), self.tier, self.stack)
        return self._cache[key]


def _emit_resource(rule: Rule, urn: str, evaluation: Evaluation, args: ResourceValidationArgs,
                   report_violation: ReportViolation) -> None:
    """One resource's verdict as CrossGuard reads it; waiver findings are left to the waiver policies."""
    mine = [f for f in evaluation.findings if f.policy == rule.id]
    waived = [f for f in mine if f.status is FindingStatus.WAIVED]
    if waived:
        # CrossGuard has no "waived" status; a not-applicable reason keeps the waiver visible.
        args.not_applicable(f"waived: {waived[0].waiver}")
    for f in mine:
        report_violation(f.message, None)
    if not mine and (rule.id, urn) in evaluation.not_applicable:
        args.not_applicable()


def _resource_validate(rule: Rule, cache: _SettingsCache, level: Level, waivers: Sequence[Waiver],
                       today: dt.date | None) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    assert rule.resource is not None

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = resource_from_args(args)
        # UnknownValueError: a value only known after `up`; CrossGuard reports the policy cannot run in preview.
        evaluation = evaluate_all([resource], cache.get(rule.id, args.get_config()), {rule.id: level}, waivers,
                                  today=today, rules=(rule,), propagate=(UnknownValueError,))
        _emit_resource(rule, resource.urn, evaluation, args, report_violation)

    return validate


def _stack_view(args: StackValidationArgs) -> tuple[list[Resource], str]:
    """The resources as ``gantry check`` sees them: the root stack resource is the subject of stack-wide
    outcomes, not a resource of its own."""
    views = [resource_from_policy_resource(r) for r in args.resources]
    stack_urn = next((v.urn for v in views if v.type == STACK_TYPE), "")
    return [v for v in views if v.type != STACK_TYPE], stack_urn


def _report(findings: Sequence[Finding], urns: set[str], report_violation: ReportViolation) -> None:
    """Violations and rule errors; a waived finding is not reported (no per-subject status in a stack policy)."""
    for f in findings:
        if f.status is not FindingStatus.WAIVED:
            report_violation(f.message, f.urn if f.urn in urns else None)


def _stack_validate(rule: Rule, cache: _SettingsCache, level: Level, waivers: Sequence[Waiver],
                    today: dt.date | None) -> Callable[[StackValidationArgs, ReportViolation], None]:
    assert rule.stack is not None

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources, stack_urn = _stack_view(args)
        evaluation = evaluate_all(resources, cache.get(rule.id, args.get_config()), {rule.id: level}, waivers,
                                  today=today, rules=(rule,), stack_urn=stack_urn, propagate=(UnknownValueError,))
        _report([f for f in evaluation.findings if f.policy == rule.id], {r.urn for r in resources},
                report_violation)

    return validate


def _waiver_validate(policy: str, settings: Settings, waivers: Sequence[Waiver], today: dt.date | None
                     ) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """``waiver-invalid`` and ``waiver-expired``: the engine's findings about waivers themselves."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources, stack_urn = _stack_view(args)
        evaluation = evaluate_all(resources, settings, {}, waivers, today=today, rules=(), stack_urn=stack_urn)
        _report([f for f in evaluation.findings if f.policy == policy], {r.urn for r in resources}, report_violation)

    return validate


def _plain(value: Any) -> Any:
    """CrossGuard's read-only proxies as plain JSON values, for the bridge's translator."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    return value


def bridge_nodes(resources: Sequence[PolicyResource]) -> list[Any]:
    """Translator nodes from the engine's view of the stack: in a preview, props are the inputs (and
    known outputs); the ids the engine knows let references survive as they do offline."""
    from policies.bridge.translate import Node

    nodes = []
    for r in resources:
        props = _plain(r.props)
        deps = {str(k): [d.urn for d in v] for k, v in (getattr(r, "property_dependencies", None) or {}).items()}
        nodes.append(Node(urn=r.urn, type=r.resource_type, name=r.name, props=props, outputs=props,
                          id=props.get("id") if isinstance(props.get("id"), str) else None,
                          property_dependencies=deps, custom=r.provider is not None))
    return nodes


def _bridge_validate(config: PolicyConfig, tier: TierName, waivers: Sequence[Waiver], blocking: bool,
                     today: dt.date | None = None) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The same bridge as ``gantry check``: one policy reports the checks mandatory at this tier, the other
    the advisory ones (CrossGuard has one enforcement level per policy)."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        from policies.bridge.catalog import ALIASES
        from policies.bridge.runner import BridgeFailed, BridgeUnavailable, CheckovSession
        from policies.bridge.translate import translate

        resources = [resource_from_policy_resource(r) for r in args.resources]
        by_urn = {r.urn: r for r in resources}
        bundle = translate(bridge_nodes(args.resources))
        if not bundle.files:
            return
        try:
            with CheckovSession() as session:
                scan = session.scan(bundle)
        except (BridgeUnavailable, BridgeFailed) as exc:
            if blocking:
                report_violation(str(exc), None)
            return
        day = today or dt.date.today()
        seen: set[tuple[str, str]] = set()
        for rec in scan.failed:
            urn = bundle.lookup(rec.framework, rec.resource)
            if urn is None or rec.check_id in ALIASES or (rec.check_id, urn) in seen:
                continue
            seen.add((rec.check_id, urn))
            level = config.check_level(rec.check_id, tier)
            if level is Level.DISABLED or (level is Level.MANDATORY) != blocking:
                continue
            subject = by_urn.get(urn)
            own = tag_waivers(subject)[0] if subject is not None else []
            w = find([*own, *waivers], rec.check_id, urn, day)
            if w is not None and not w.expired(day):
                continue
            report_violation(f"{rec.check_id}: {rec.check_name}", urn)

    return validate


def build_policies(config: PolicyConfig, tier: TierName, stack: StackPolicy | None = None,
                   waivers: Sequence[Waiver] = (), *, today: dt.date | None = None) -> list[Policy]:
    """One CrossGuard policy per rule, at the level the config file sets for ``tier``, then the two waiver
    policies (always mandatory, as in ``gantry check``) and the Checkov bridge. ``today`` is for tests."""
    cache = _SettingsCache(config, tier, stack or StackPolicy())
    out: list[Policy] = []
    for rule in RULES:
        level = config.level_for(rule.id, tier)
        schema = PolicyConfigSchema(properties=dict(config_schema(rule.id)))
        if rule.resource is not None:
            out.append(ResourceValidationPolicy(
                name=rule.id, description=rule.description, enforcement_level=_LEVELS[level],
                validate=_resource_validate(rule, cache, level, waivers, today), config_schema=schema,
                remediation_steps=rule.remediation))
        else:
            out.append(StackValidationPolicy(
                name=rule.id, description=rule.description, enforcement_level=_LEVELS[level],
                validate=_stack_validate(rule, cache, level, waivers, today), config_schema=schema,
                remediation_steps=rule.remediation))
    settings = cache.get("", {})
    out.append(StackValidationPolicy(
        name=WAIVER_INVALID, description="Waiver tags on resources name a known policy and give a reason.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_waiver_validate(WAIVER_INVALID, settings, waivers, today),
        remediation_steps="Write the tag as '<policy>=<reason>[ until YYYY-MM-DD]', with a policy id of the pack."))
    out.append(StackValidationPolicy(
        name=WAIVER_EXPIRED, description="No waiver that matches the stack is past its expiry date.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_waiver_validate(WAIVER_EXPIRED, settings, waivers, today),
        remediation_steps="Renew the waiver with a new date after review, or fix the finding and delete it."))
    if config.bridge_enabled(tier):
        from policies.bridge.catalog import BRIDGE_ID

        schema = PolicyConfigSchema(properties=dict(config_schema(BRIDGE_ID)))
        out.append(StackValidationPolicy(
            name=BRIDGE_ID, description="Checkov's catalogue through the Gantry bridge: checks mandatory at this "
                                        "tier.", enforcement_level=EnforcementLevel.MANDATORY,
            validate=_bridge_validate(config, tier, waivers, blocking=True, today=today), config_schema=schema,
            remediation_steps="Fix the resource as the check's guideline says, or waive the CKV id with a reason."))
        out.append(StackValidationPolicy(
            name=f"{BRIDGE_ID}-advisory", description="Checkov's catalogue through the Gantry bridge: advisory "
                                                      "checks.", enforcement_level=EnforcementLevel.ADVISORY,
            validate=_bridge_validate(config, tier, waivers, blocking=False, today=today),
            remediation_steps="Fix the resource as the check's guideline says, or waive the CKV id with a reason."))
    return out
