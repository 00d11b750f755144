"""CrossGuard adapter: turns the pack's pure rules into ``pulumi_policy`` policies.

Imported by ``policies/__main__.py`` (which hands the policies to ``PolicyPack`` and so starts the gRPC
server) and by the tests, which call the built policies directly without any server.
"""

from __future__ import annotations

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

from policies.config import PolicyConfig, RuleConfig, StackPolicy, build_settings, config_schema
from policies.model import Level, Resource, Settings, State, TierName
from policies.pack import RULES, Rule
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
            rules[policy] = RuleConfig(base.level, base.tiers, props)
            self._cache[key] = build_settings(PolicyConfig(rules, self.config.source), self.tier, self.stack)
        return self._cache[key]


def _waived(resource: Resource, policy: str, waivers: Sequence[Waiver]) -> Waiver | None:
    import datetime as dt

    own, _problems = tag_waivers(resource)
    w = find(own, policy, resource.urn) or find(waivers, policy, resource.urn)
    return w if w is not None and not w.expired(dt.date.today()) else None


def _resource_validate(rule: Rule, cache: _SettingsCache, waivers: Sequence[Waiver]
                       ) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    check = rule.resource
    assert check is not None

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = resource_from_args(args)
        try:
            outcome = check(resource, cache.get(rule.id, args.get_config()))
        except UnknownValueError:
            raise  # a value only known after `up`: CrossGuard reports that this policy cannot run in preview
        except Exception as exc:  # a broken rule is reported, and the other policies still run
            report_violation(f"rule {rule.id} raised {type(exc).__name__}: {exc}", None)
            return
        if outcome.state is State.NOT_APPLICABLE:
            args.not_applicable()
        if outcome.state is not State.NON_COMPLIANT:
            return
        waiver = _waived(resource, rule.id, waivers)
        if waiver is not None:
            # CrossGuard has no "waived" status; a not-applicable reason keeps the waiver visible.
            args.not_applicable(f"waived: {waiver.reason} ({waiver.source})")
        report_violation(outcome.message, None)

    return validate


def _stack_validate(rule: Rule, cache: _SettingsCache, waivers: Sequence[Waiver]
                    ) -> Callable[[StackValidationArgs, ReportViolation], None]:
    check = rule.stack
    assert check is not None

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [resource_from_policy_resource(r) for r in args.resources]
        by_urn = {r.urn: r for r in resources}
        try:
            results = check(resources, cache.get(rule.id, args.get_config()))
        except UnknownValueError:
            raise
        except Exception as exc:
            report_violation(f"rule {rule.id} raised {type(exc).__name__}: {exc}", None)
            return
        for result in results:
            if not result.outcome.failed:
                continue
            subject = by_urn.get(result.urn) if result.urn else None
            if subject is not None and _waived(subject, rule.id, waivers) is not None:
                continue
            report_violation(result.outcome.message, result.urn)

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


def _bridge_validate(config: PolicyConfig, tier: TierName, waivers: Sequence[Waiver], blocking: bool
                     ) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The same bridge as ``gantry check``: one policy reports the checks mandatory at this tier, the other
    the advisory ones (CrossGuard has one enforcement level per policy)."""
    import datetime as dt

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
        today = dt.date.today()
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
            w = find([*own, *waivers], rec.check_id, urn, today)
            if w is not None and not w.expired(today):
                continue
            report_violation(f"{rec.check_id}: {rec.check_name}", urn)

    return validate


def build_policies(config: PolicyConfig, tier: TierName, stack: StackPolicy | None = None,
                   waivers: Sequence[Waiver] = ()) -> list[Policy]:
    """One CrossGuard policy per rule, at the level the config file sets for ``tier``."""
    cache = _SettingsCache(config, tier, stack or StackPolicy())
    out: list[Policy] = []
    for rule in RULES:
        level = _LEVELS[config.level_for(rule.id, tier)]
        schema = PolicyConfigSchema(properties=dict(config_schema(rule.id)))
        if rule.resource is not None:
            out.append(ResourceValidationPolicy(
                name=rule.id, description=rule.description, enforcement_level=level,
                validate=_resource_validate(rule, cache, waivers), config_schema=schema,
                remediation_steps=rule.remediation))
        else:
            out.append(StackValidationPolicy(
                name=rule.id, description=rule.description, enforcement_level=level,
                validate=_stack_validate(rule, cache, waivers), config_schema=schema,
                remediation_steps=rule.remediation))
    if config.bridge_enabled(tier):
        from policies.bridge.catalog import BRIDGE_ID

        schema = PolicyConfigSchema(properties=dict(config_schema(BRIDGE_ID)))
        out.append(StackValidationPolicy(
            name=BRIDGE_ID, description="Checkov's catalogue through the Gantry bridge: checks mandatory at this "
                                        "tier.", enforcement_level=EnforcementLevel.MANDATORY,
            validate=_bridge_validate(config, tier, waivers, blocking=True), config_schema=schema,
            remediation_steps="Fix the resource as the check's guideline says, or waive the CKV id with a reason."))
        out.append(StackValidationPolicy(
            name=f"{BRIDGE_ID}-advisory", description="Checkov's catalogue through the Gantry bridge: advisory "
                                                      "checks.", enforcement_level=EnforcementLevel.ADVISORY,
            validate=_bridge_validate(config, tier, waivers, blocking=False),
            remediation_steps="Fix the resource as the check's guideline says, or waive the CKV id with a reason."))
    return out
