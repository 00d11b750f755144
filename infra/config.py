"""Typed stack config: one validated model of everything a stack sets under ``gantry:*``.

Called by the Pulumi program (from the engine's config) and by the CLI, renderer and rollout
engine (straight from ``stacks/Pulumi.<stack>.yaml``). Every error names the stack file, the
config key path, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field, ValidationError, model_validator

from components.spec import Cloud, ClusterSpec, ServiceSpec, Spec, Strategy, Tier, namespace_owner_violations
from components.validation import SpecError, Violation, check_region, message, raise_first
from infra import registry
from infra.documents import DocumentError, clip, load_yaml
from infra.dr.settings import DrSettings, dr_violations
from infra.errors import InputError
from infra.secret_value import SecretValue, unsecure
from infra.settings.rollout import RolloutSettings

__all__ = ["ConfigError", "GantryConfig", "SecretValue", "load_stack", "parse", "read_stack_file"]

NAMESPACE = "gantry"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(InputError):
    """Stack config is invalid; each line names the file, the key path, the value and the fix."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


class ServiceConfig(ServiceSpec):
    """A service as the stack declares it: the component spec plus rollout overrides."""

    rollout: RolloutSettings | None = Field(
        default=None, description="Per-service rollout settings. Default: the stack's gantry:rollout."
    )


class PolicySettings(Spec):
    """Inputs to the policy pack that belong to the stack."""

    monthly_budget_usd: float | None = Field(
        default=None, gt=0, description="Monthly budget for the cost-budget rule. Default: none (rule n/a)."
    )
    supported_versions: list[str] | None = Field(
        default=None,
        description="Kubernetes minor versions k8s-version-supported accepts. Default: the policy config's list.",
    )
    public_load_balancers: list[str] | None = Field(
        default=None,
        description="'namespace/name' of Services allowed to be public LoadBalancers. Default: none.",
    )


class GantryConfig(Spec):
    """Everything one stack sets. Keys are the part after ``gantry:``."""

    cloud: Cloud = Field(description="aws, gcp, azure or local. Required.")
    region: str | None = Field(default=None, description="Primary region. Required unless cloud is local.")
    regions: list[str] = Field(default_factory=list, description="Additional regions. Default: none.")
    project: str | None = Field(default=None, description="GCP project id. Default: the provider's.")
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Environment name. Required.")
    tier: Tier = Field(description="dev, staging or prod. Required.")
    cluster: ClusterSpec | None = Field(default=None, description="The cluster. Required unless cloud is local.")
    services: dict[str, ServiceConfig] = Field(default_factory=dict, description="Services by name.")
    rollout: RolloutSettings = Field(default_factory=RolloutSettings, description="Rollout defaults.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags / labels on every cloud resource.")
    policy: PolicySettings = Field(default_factory=PolicySettings, description="Policy inputs.")
    sandbox: Annotated[Any, registry.section("sandbox")] = Field(
        default_factory=registry.section_default("sandbox"),
        description="Local sandbox (cloud local): the section the sandbox package registers.")
    dr: DrSettings | None = Field(default=None, description="Disaster recovery: primary/standby stacks. Default: none.")

    @model_validator(mode="after")
    def _check(self) -> GantryConfig:
        out: list[Violation] = []
        if self.cloud is not Cloud.LOCAL:
            if self.region is None:
                out.append(Violation("region", f"set for cloud {self.cloud.value}", None))
            else:
                out += check_region("region", self.cloud.value, self.region)
            for i, r in enumerate(self.regions):
                out += check_region(f"regions[{i}]", self.cloud.value, r)
            if self.cluster is None:
                out.append(Violation("cluster", f"set for cloud {self.cloud.value}", None))
            elif not out:
                # The cloud-specific limits the components enforce at construction, surfaced at load time
                # so `gantry stacks` and `gantry render` report them against the stack file.
                from components.cluster_support import cluster_violations, tag_violations

                out += [Violation(f"cluster.{v.field}", v.constraint, v.value)
                        for v in cluster_violations(self.cluster, cloud=self.cloud.value, region=self.region)]
                out += tag_violations(self.tags, cloud=self.cloud.value)
        for name in self.services:
            if not name.replace("-", "").isalnum() or not name[0].isalpha() or name != name.lower():
                out.append(Violation(f"services.{name}", "named in lowercase letters, digits and '-'", name))
        out += namespace_owner_violations(self.services)
        if self.dr is not None:
            out += dr_violations(self.dr, local=self.cloud is Cloud.LOCAL, services=list(self.services),
                                 prod=self.tier is Tier.PROD)
        if not out:
            from infra.settings.checks import rollout_violations

            out += rollout_violations(self)
        raise_first(out)
        return self

    def rollout_for(self, service: str) -> RolloutSettings:
        """The effective rollout settings for one service."""
        svc = self.services[service]
        return svc.rollout or self.rollout

    def service(self, name: str, strategy: Strategy | None = None) -> ServiceConfig:
        """Look a service up, with an error listing the valid names."""
        if name not in self.services:
            valid = ", ".join(sorted(self.services)) or "none"
            raise KeyError(message("service", f"one of the stack's services ({valid})", name))
        svc = self.services[name]
        if strategy is not None and svc.strategy is not strategy:
            raise KeyError(message(f"services.{name}.strategy", f"{strategy.value} for this rollout",
                                   svc.strategy.value))
        return svc


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class StackFile:
    """A stack's config file on disk and its parsed ``config:`` block."""

    stack: str
    path: Path
    raw: Mapping[str, object]


def stack_path(stack: str, config_dir: Path) -> Path:
    return config_dir / f"Pulumi.{stack}.yaml"


def read_stack_file(stack: str, config_dir: Path) -> StackFile:
    """Parse ``Pulumi.<stack>.yaml``; YAML and shape errors become ``ConfigError``."""
    path = stack_path(stack, config_dir)
    source = _display(path)
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in config_dir.glob("Pulumi.*.yaml"))
        hint = f"; known stacks: {', '.join(known)}" if known else ""
        raise ConfigError(source, [f"stack file not found{hint}"])
    try:
        doc = load_yaml(path, source)
    except DocumentError as exc:
        raise ConfigError(source, [exc.problem]) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(source, [message("the document", "a mapping with a 'config' key", type(doc).__name__)])
    raw = doc.get("config", {}) or {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [message("config", "a mapping of 'namespace:key' to values", raw)])
    return StackFile(stack=stack, path=path, raw=raw)


def namespace_values(raw: Mapping[str, object], namespace: str = NAMESPACE) -> dict[str, object]:
    """The ``gantry:*`` keys with the prefix removed; ``secure:`` values become placeholders."""
    prefix = f"{namespace}:"
    out: dict[str, object] = {}
    for key, value in raw.items():
        if isinstance(key, str) and key.startswith(prefix):
            out[key[len(prefix):]] = unsecure(value, key[len(prefix):])[0]
    return out


def load_stack(stack: str, config_dir: Path) -> GantryConfig:
    """Load and validate a stack straight from disk (no engine needed)."""
    sf = read_stack_file(stack, config_dir)
    return parse(namespace_values(sf.raw), source=_display(sf.path))


def load_from_engine() -> GantryConfig:
    """Load the current stack's ``gantry:*`` config from the Pulumi engine (inside a program)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    values: dict[str, object] = {}
    prefix = f"{NAMESPACE}:"
    # The language host may pass config explicitly or through PULUMI_CONFIG; read both.
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env() or {})
    for full_key in sorted(keys):
        key = str(full_key)
        if not key.startswith(prefix):
            continue
        raw = runtime_config.get_config(key)
        values[key[len(prefix):]] = _decode_engine_value(raw)
    source = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    return parse(values, source=source)


def _decode_engine_value(raw: object) -> object:
    # Structured config reaches the program as JSON text; scalars stay strings, as the engine sends them.
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse(values: Mapping[str, object], source: str) -> GantryConfig:
    """Validate ``gantry:*`` values against the registered backends; every problem is one line of a ``ConfigError``."""
    try:
        return GantryConfig.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(source, [_format(err, values) for err in exc.errors()]) from None
    except (SpecError, ValueError, TypeError) as exc:  # defensive: validators raising outside pydantic
        raise ConfigError(source, [_one_line(str(exc))]) from None


def problems(exc: ValidationError) -> list[str]:
    """A validation error as ``gantry:<field> must be ...`` lines (``Spec.with_overrides`` raises these)."""
    return [_format(err) for err in exc.errors()]


def _format(err: Mapping[str, Any], values: Mapping[str, object] | None = None) -> str:
    loc: tuple[int | str, ...] = tuple(err.get("loc", ()))
    typ = str(err.get("type", ""))
    ctx = cast(Mapping[str, Any], err.get("ctx") or {})
    value = err.get("input")
    inner = ctx.get("error")
    if isinstance(inner, SpecError):
        # Raised by a model validator: the field is relative to the model at `loc`.
        return f"{_key(loc, inner.field)} {_rest(inner.field, inner.constraint, inner.value)}"
    if typ == "extra_forbidden":
        return _unknown_key(loc, values or {})
    if typ in ("unknown_backend", "backend_type"):
        given = value.get("kind", value.get("provider")) if isinstance(value, dict) else value
        shown = "nothing" if given is None else _show(given)
        return f"{_key(loc)}.kind must be one of {ctx.get('valid', '')}, but {shown} was given"
    if typ == "missing":
        return f"{_key(loc)} must be set, but nothing was given"
    constraint = _constraint(typ, ctx, str(err.get("msg", "")))
    if typ == "value_error":
        text = str(err.get("msg", "")).removeprefix("Value error, ")
        if " must be " in text:
            return f"{_key(loc)} must be {text.split(' must be ', 1)[1]}"
        return f"{_key(loc)}: {text}"
    return f"{_key(loc)} must be {constraint}, but {_show(value)} was given"


def _rest(field: str, constraint: str, value: object) -> str:
    return message(field, constraint, value)[len(field) + 1:]


def _show(value: object) -> str:
    # Values come from the stack file: cut them, so a 2 MB value is never echoed back whole.
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:60]) + f"... ({len(value)} characters)"
    if isinstance(value, dict | list):
        text = json.dumps(value, default=str)
        return text if len(text) <= 80 else text[:77] + "..."
    return clip(str(value), 80)


def _constraint(typ: str, ctx: Mapping[str, Any], msg: str) -> str:
    simple = {
        "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
        "float_type": "a number", "float_parsing": "a number", "string_type": "a string",
        "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
        "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    }
    if typ in simple:
        return simple[typ]
    if typ in ("enum", "literal_error"):
        return f"one of {ctx.get('expected', '')}"
    if typ == "greater_than_equal":
        return f">= {ctx.get('ge')}"
    if typ == "greater_than":
        return f"> {ctx.get('gt')}"
    if typ == "less_than_equal":
        return f"<= {ctx.get('le')}"
    if typ == "less_than":
        return f"< {ctx.get('lt')}"
    if typ == "string_pattern_mismatch":
        return f"a string matching {ctx.get('pattern')}"
    if typ == "too_short":
        return f"a list of at least {ctx.get('min_length')} item(s)"
    if typ == "too_long":
        return f"a list of at most {ctx.get('max_length')} item(s)"
    return msg[:1].lower() + msg[1:] if msg else "valid"


def _key(loc: tuple[int | str, ...], field: str = "") -> str:
    parts = ""
    for item in loc:
        if isinstance(item, int):
            parts += f"[{item}]"
        elif not _PLAIN_KEY.fullmatch(str(item)):
            # Keys with spaces, dots or control characters are quoted so the message stays one line.
            parts += f"[{json.dumps(clip(str(item)))}]"
        else:
            parts += f".{clip(str(item))}" if parts else clip(str(item))
    if field:
        parts = f"{parts}.{field}" if parts else field
    return f"{NAMESPACE}:{parts}"


def _unknown_key(loc: tuple[int | str, ...], values: Mapping[str, object]) -> str:
    parent, name = loc[:-1], str(loc[-1])
    model = _model_at(parent, values)
    valid: list[str] = []
    if model is not None:
        valid = [f.alias or n for n, f in model.model_fields.items()]
    hint = ""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean {close[0]}?"
    elif valid:
        hint = f"; valid keys: {', '.join(valid)}"
    return f"{_key(loc)} is not a known key{hint}"


def _model_at(loc: tuple[int | str, ...], values: Mapping[str, object]) -> type[BaseModel] | None:
    """Walk the model tree along a validation location (list indices and dict keys stay on their model);
    at a pluggable key, the model is the backend the raw value's ``kind`` names."""
    current: type[BaseModel] | None = GantryConfig
    raw: object = values
    for item in loc:
        raw = _child(raw, item)
        if current is None or isinstance(item, int):
            continue
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        field = fields.get(str(item))
        if field is None:
            continue  # a dict key (service name): stay on the value model
        current = _model_of(field.annotation)
        plug = registry.pluggable_registry(field.metadata) or _list_registry(field.annotation)
        if plug is not None:
            current = _backend_model(plug, raw, current)
    return current


def _child(raw: object, item: int | str) -> object:
    if isinstance(raw, dict):
        return raw.get(item)
    if isinstance(raw, list) and isinstance(item, int) and 0 <= item < len(raw):
        return raw[item]
    return None


def _backend_model(plug: registry.Registry, raw: object, base: type[BaseModel] | None) -> type[BaseModel] | None:
    try:
        value = plug.normalise(raw)
    except ValueError:
        return base
    kind = value.get("kind") if isinstance(value, dict) else None
    return plug.model(kind) if isinstance(kind, str) and kind in plug else base


def _list_registry(annotation: object) -> registry.Registry | None:
    for arg in getattr(annotation, "__args__", ()):
        found = registry.pluggable_registry(list(getattr(arg, "__metadata__", ())))
        if found is not None:
            return found
    return None


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _one_line(text: str) -> str:
    return " ".join(text.split())

