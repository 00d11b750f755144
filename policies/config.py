"""The one policy config file (``policies/policy-config.json``): levels per tier and rule properties.

The file is valid for ``pulumi preview --policy-pack-config`` (every key is a policy id, every property
is declared in that policy's config schema) and is read by ``gantry check`` and by the pack at startup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from components.errors import InputError
from policies.bridge.catalog import BRIDGE_ID, CHECK_ID, default_level, is_check_id
from policies.model import Level, Settings, TierName
from policies.pack import BY_ID, RULES
from policies.rule import RuleOptions

DEFAULT_PATH = Path(__file__).with_name("policy-config.json")
PRICES_PATH = Path(__file__).with_name("prices.json")

LEVELS = [lv.value for lv in Level]
COMMON_PROPERTIES: dict[str, dict[str, object]] = {
    "level": {"type": "string", "enum": LEVELS},
    "tiers": {"type": "object", "additionalProperties": False,
              "properties": {t.value: {"type": "string", "enum": LEVELS} for t in TierName}},
}
# The Checkov bridge: ``level`` is the level of checks outside the curated prod set ("disabled" turns the
# bridge off), ``checks`` sets levels per check id, with the same shape as a rule's level and tiers.
BRIDGE_PROPERTIES: dict[str, dict[str, object]] = {
    "checks": {"type": "object", "propertyNames": {"pattern": CHECK_ID.pattern},
               "additionalProperties": {"oneOf": [
                   {"type": "string", "enum": LEVELS},
                   {"type": "object", "additionalProperties": False,
                    "properties": {"level": COMMON_PROPERTIES["level"], "tiers": COMMON_PROPERTIES["tiers"]}}]}},
}


class PolicyConfigError(InputError, ValueError):
    """The policy config file is unreadable, or names an unknown policy, level, tier or property, or gives a
    property a value of the wrong type or range: fix the file (exit 2)."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


@dataclass(frozen=True, slots=True)
class RuleConfig:
    level: Level | None = None
    tiers: Mapping[TierName, Level] = field(default_factory=dict)
    properties: Mapping[str, object] = field(default_factory=dict)
    options: RuleOptions | None = None
    """``properties`` validated by the rule's options model (None for rules without options)."""


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Parsed policy config; ``level_for`` resolves tier override > rule level > pack default."""

    rules: Mapping[str, RuleConfig] = field(default_factory=dict)
    source: str = "(defaults)"

    def level_for(self, policy: str, tier: TierName) -> Level:
        cfg = self.rules.get(policy, RuleConfig())
        if tier in cfg.tiers:
            return cfg.tiers[tier]
        return cfg.level or BY_ID[policy].default_level(tier)

    def levels(self, tier: TierName) -> dict[str, Level]:
        return {r.id: self.level_for(r.id, tier) for r in RULES}

    def prop(self, policy: str, name: str) -> object:
        return self.rules.get(policy, RuleConfig()).properties.get(name)

    def options(self) -> dict[str, RuleOptions]:
        """Every configurable rule's validated options: the file's values over the model's defaults."""
        out: dict[str, RuleOptions] = {}
        for r in RULES:
            if r.options is not None:
                given = self.rules.get(r.id, RuleConfig()).options
                out[r.id] = given if isinstance(given, r.options) else r.options()
        return out

    def bridge_enabled(self, tier: TierName) -> bool:
        cfg = self.rules.get(BRIDGE_ID, RuleConfig())
        return cfg.tiers.get(tier, cfg.level) is not Level.DISABLED

    def check_level(self, check_id: str, tier: TierName) -> Level:
        """A Checkov check's level: its own entry (tier, then level), else the curated default, where the
        bridge's own level (if set) replaces "advisory" for checks outside the curated prod set."""
        cfg = self.rules.get(BRIDGE_ID, RuleConfig())
        checks = cfg.properties.get("checks")
        entry = checks.get(check_id) if isinstance(checks, Mapping) else None
        if isinstance(entry, str):
            return Level(entry)
        if isinstance(entry, Mapping):
            tiers = entry.get("tiers")
            if isinstance(tiers, Mapping) and tier.value in tiers:
                return Level(str(tiers[tier.value]))
            if entry.get("level") is not None:
                return Level(str(entry["level"]))
        level = default_level(check_id, tier)
        bridge = cfg.tiers.get(tier, cfg.level)
        if level is Level.ADVISORY and bridge is not None and bridge is not Level.DISABLED:
            return bridge
        return level


def option_properties(options: type[RuleOptions] | None) -> dict[str, dict[str, object]]:
    """A rule's options as JSON-schema properties (camelCase), from its pydantic model."""
    if options is None:
        return {}
    schema = options.model_json_schema(by_alias=True)
    props = schema.get("properties", {})
    return {str(k): {kk: vv for kk, vv in dict(v).items() if kk != "title"} for k, v in props.items()}


def config_schema(policy: str) -> dict[str, dict[str, object]]:
    """The JSON schema a policy declares to CrossGuard, so this file passes ``--policy-pack-config``."""
    if policy == BRIDGE_ID:
        return {**COMMON_PROPERTIES, **BRIDGE_PROPERTIES}
    rule = BY_ID.get(policy)
    return {**COMMON_PROPERTIES, **option_properties(rule.options if rule else None)}


def default_config() -> dict[str, object]:
    """The policy config every rule's module implies: its level, tier overrides and option defaults, then the
    Checkov bridge's entry. ``python -m policies.generate`` writes it to ``policy-config.json``."""
    doc: dict[str, object] = {}
    for r in RULES:
        entry: dict[str, object] = {"level": r.level.value}
        if r.tiers:
            entry["tiers"] = {t.value: lv.value for t, lv in sorted(r.tiers.items(), key=lambda kv: _TIER_ORDER[kv[0]])}
        if r.options is not None:
            entry.update(r.options().model_dump(mode="json", by_alias=True, exclude_none=True))
        doc[r.id] = entry
    doc[BRIDGE_ID] = dict(BRIDGE_DEFAULT)
    return doc


_TIER_ORDER = {TierName.DEV: 0, TierName.STAGING: 1, TierName.PROD: 2}
BRIDGE_DEFAULT: dict[str, object] = {
    "level": "advisory",
    # Example of a per-check level: S3 event notifications (CKV2_AWS_62) are noise in dev.
    "checks": {"CKV2_AWS_62": {"level": "advisory", "tiers": {"dev": "disabled"}}},
}


def validate_options(policy: str, props: Mapping[str, object], source: str) -> RuleOptions | None:
    """A rule's properties validated by its options model; raises ``PolicyConfigError`` naming each bad one."""
    problems: list[str] = []
    known = {k: v for k, v in props.items() if k not in ("level", "tiers", "enforcementLevel")}
    options = _options(policy, known, problems)
    if problems:
        raise PolicyConfigError(source, problems)
    return options


def _options(rule_id: str, props: Mapping[str, object], problems: list[str]) -> RuleOptions | None:
    """Validate a rule's properties by type and range; each refusal is one line naming the property."""
    options = BY_ID[rule_id].options
    if options is None:
        return None
    try:
        return options.model_validate(dict(props))
    except ValidationError as exc:
        fields = {f.alias or name: f for name, f in options.model_fields.items()}
        for e in exc.errors():
            prop = str(e["loc"][0]) if e["loc"] else "?"
            where = ".".join(str(p) for p in e["loc"])
            field_info = fields.get(prop)
            constraint = field_info.description if field_info is not None and field_info.description else e["msg"]
            problems.append(f"{rule_id}.{where} must be {constraint}, but {_shown(e.get('input'))} was given")
        return None


def parse_policy_config(doc: object, source: str) -> PolicyConfig:
    if not isinstance(doc, Mapping):
        raise PolicyConfigError(source, ["the document must be a JSON object keyed by policy id"])
    problems: list[str] = []
    rules: dict[str, RuleConfig] = {}
    for key, value in doc.items():
        if key == "all":
            problems.append("'all' is not supported; set levels per policy id so each is explicit")
            continue
        if key not in BY_ID and key != BRIDGE_ID:
            hint = (f"; set Checkov check levels under {BRIDGE_ID}.checks.{key}" if is_check_id(key) else "")
            problems.append(f"{key} must be a policy id of the pack (see `gantry check --list-rules`), "
                            f"but {_shown(key)} was given{hint}")
            continue
        if isinstance(value, str):
            value = {"level": value}
        if not isinstance(value, Mapping):
            problems.append(f"{key} must be a level or an object, but {_shown(value)} was given")
            continue
        allowed = set(config_schema(key)) | {"enforcementLevel"}
        for prop in value:
            if prop not in allowed:
                problems.append(f"{key}.{prop} is not a known property; valid: {', '.join(sorted(allowed))}")
        level = _level(value.get("level", value.get("enforcementLevel")), f"{key}.level", problems)
        tiers: dict[TierName, Level] = {}
        raw_tiers = value.get("tiers", {})
        if not isinstance(raw_tiers, Mapping):
            problems.append(f"{key}.tiers must be an object of tier to level, but {_shown(raw_tiers)} was given")
            raw_tiers = {}
        for tier, lv in raw_tiers.items():
            if tier not in {t.value for t in TierName}:
                problems.append(f"{key}.tiers.{tier} must be one of dev, staging, prod, but {_shown(tier)} was given")
                continue
            parsed = _level(lv, f"{key}.tiers.{tier}", problems)
            if parsed is not None:
                tiers[TierName(tier)] = parsed
        props = {k: v for k, v in value.items() if k not in ("level", "tiers", "enforcementLevel")}
        options: RuleOptions | None = None
        if key == BRIDGE_ID:
            _check_levels(props.get("checks", {}), problems)
        else:
            known = {k: v for k, v in props.items() if k in allowed}
            options = _options(key, known, problems)
        rules[key] = RuleConfig(level, tiers, props, options)
    if problems:
        raise PolicyConfigError(source, problems)
    return PolicyConfig(rules, source)


def _check_levels(checks: object, problems: list[str]) -> None:
    where = f"{BRIDGE_ID}.checks"
    if not isinstance(checks, Mapping):
        problems.append(f"{where} must be an object of Checkov check id to level, but {checks!r} was given")
        return
    for cid, entry in checks.items():
        if not is_check_id(cid):
            problems.append(f"{where}.{cid} must be a Checkov check id such as CKV_AWS_20, but {cid!r} was given")
            continue
        if isinstance(entry, str):
            _level(entry, f"{where}.{cid}", problems)
            continue
        if not isinstance(entry, Mapping) or set(entry) - {"level", "tiers"}:
            problems.append(f"{where}.{cid} must be a level or {{level, tiers}}, but {entry!r} was given")
            continue
        _level(entry.get("level"), f"{where}.{cid}.level", problems)
        tiers = entry.get("tiers", {})
        if not isinstance(tiers, Mapping):
            problems.append(f"{where}.{cid}.tiers must be an object of tier to level, but {tiers!r} was given")
            continue
        for tier, lv in tiers.items():
            if tier not in {t.value for t in TierName}:
                problems.append(f"{where}.{cid}.tiers.{tier} must be one of dev, staging, prod, but {tier!r} "
                                "was given")
            else:
                _level(lv, f"{where}.{cid}.tiers.{tier}", problems)


def _level(value: object, where: str, problems: list[str]) -> Level | None:
    if value is None:
        return None
    if value not in LEVELS:
        problems.append(f"{where} must be one of {', '.join(LEVELS)}, but {_shown(value)} was given")
        return None
    return Level(str(value))


def load_policy_config(path: Path | None = None) -> PolicyConfig:
    from infra.documents import DocumentError, load_json

    path = path or DEFAULT_PATH
    try:
        doc = load_json(path, str(path))
    except DocumentError as exc:
        raise PolicyConfigError(str(path), [exc.problem]) from None
    return parse_policy_config(doc, str(path))


def load_prices(path: Path | None = None) -> dict[str, float]:
    """Hourly prices by machine type; the file groups them per cloud for readability."""
    doc = json.loads((path or PRICES_PATH).read_text(encoding="utf-8"))
    out: dict[str, float] = {}
    for cloud, table in doc.get("hourlyUsd", {}).items():
        for machine, price in table.items():
            if not isinstance(price, int | float) or price < 0:
                raise PolicyConfigError(str(path or PRICES_PATH), [
                    f"hourlyUsd.{cloud}.{machine} must be a non-negative number, but {_shown(price)} was given"])
            out[str(machine)] = float(price)
    return out


@dataclass(frozen=True, slots=True)
class StackPolicy:
    """The stack's own policy inputs (``gantry:policy``), which win over the config file."""

    monthly_budget_usd: float | None = None
    supported_versions: tuple[str, ...] | None = None
    public_load_balancers: tuple[str, ...] | None = None


def build_settings(config: PolicyConfig, tier: TierName, stack: StackPolicy | None = None,
                   prices: Mapping[str, float] | None = None) -> Settings:
    """Every rule's validated options from the config file, with the stack's ``gantry:policy`` inputs over
    them: its supported versions and budget replace the file's, its public load balancers add to the file's."""
    stack = stack or StackPolicy()
    options = config.options()
    overrides: dict[str, dict[str, object]] = {
        "k8s-version-supported": {"supported_versions": list(stack.supported_versions)}
        if stack.supported_versions else {},
        "cost-budget": {"monthly_budget_usd": stack.monthly_budget_usd}
        if stack.monthly_budget_usd is not None else {},
        "service-no-public-exposure": {"allow_list": [*(stack.public_load_balancers or ()),
                                                       *getattr(options.get("service-no-public-exposure"),
                                                                "allow_list", [])]}
        if stack.public_load_balancers else {},
    }
    for policy, update in overrides.items():
        model = options.get(policy)
        if update and model is not None:
            # The stack's values were validated when the stack file was read (infra.config.PolicySettings).
            options[policy] = model.model_copy(update=update)
    return Settings(tier=tier, prices=dict(prices) if prices is not None else load_prices(), options=options)


def _shown(value: object) -> str:
    """A value from the file as errors show it: its repr, cut to one short line."""
    from infra.documents import clip

    return clip(repr(value), 80)
