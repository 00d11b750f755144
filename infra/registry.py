"""One registry per pluggable kind: a backend registers its settings model (with a ``kind`` literal) once.

Config layer: imports nothing above it. A backend module (rollout or sandbox layer) declares a pydantic
settings model whose ``kind`` field is a one-value ``Literal`` and registers it with
``@REGISTRY.register``; the model's methods are the backend's behaviour, which the layers above call
through the seams they define. Stack config validates each pluggable key against whatever is registered
when it loads (the model the value's ``kind`` names), so a backend's own settings errors are config
errors naming the key, and an unknown kind lists the valid ones. Which modules register is decided by
``infra.plugins.load`` (the command layer), never here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, PlainValidator, SerializeAsAny
from pydantic_core import PydanticCustomError

from infra.errors import InputError

M = TypeVar("M", bound=type[BaseModel])
DISCRIMINATOR = "kind"


class Registry:
    """The registered settings models of one pluggable kind (e.g. ``rollout.metrics``), by name.

    ``shorthand`` turns the accepted short or older spellings of a value into ``{kind: ..., ...}`` before
    validation (e.g. ``target: pulumi``); it is data-only and never names a module.
    """

    def __init__(self, key: str, *, default: str | None = None,
                 shorthand: Callable[[object], object] | None = None) -> None:
        self.key = key
        self.default = default
        self.shorthand = shorthand
        self._models: dict[str, type[BaseModel]] = {}

    def register(self, model: M) -> M:
        """Class decorator: register ``model`` under the value of its ``kind: Literal[...]`` field, once."""
        name = kind_of(model)
        known = self._models.get(name)
        if known is not None and known is not model:
            raise ValueError(f"{self.key} backend {name!r} is already registered by {known.__module__}")
        self._models[name] = model
        return model

    def unregister(self, name: str) -> None:
        """Drop a backend (tests that register a throwaway one)."""
        self._models.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self) -> Iterator[type[BaseModel]]:
        return iter(self._models.values())

    def model(self, name: str) -> type[BaseModel]:
        """The settings model registered as ``name``; an unknown name is an input error listing the valid ones."""
        model = self._models.get(name)
        if model is None:
            raise InputError(f"{self.key}.kind must be one of {self.valid()}, but {name!r} was given")
        return model

    def valid(self) -> str:
        return ", ".join(self.names()) or "(none registered: call infra.plugins.load() first)"

    def normalise(self, value: object) -> object:
        if self.shorthand is not None:
            value = self.shorthand(value)
        if isinstance(value, dict) and DISCRIMINATOR not in value and self.default is not None:
            value = {DISCRIMINATOR: self.default, **value}
        return value

    def validate(self, value: object) -> BaseModel:
        """Validate one raw value (a mapping, a shorthand or an already-built model) against its backend's model.

        The backend's own errors surface with their location under the key (pydantic nests them).
        """
        if isinstance(value, BaseModel) and type(value) in self._models.values():
            return value
        raw = self.normalise(value)
        if not isinstance(raw, dict):
            raise PydanticCustomError("backend_type", "a mapping whose kind must be one of {valid}",
                                      {"valid": self.valid()})
        model = self._models.get(str(raw.get(DISCRIMINATOR)))
        if model is None:
            raise PydanticCustomError("unknown_backend", "kind must be one of {valid}", {"valid": self.valid()})
        return model.model_validate(raw)

    def make_default(self) -> Any:
        """The default backend's settings with every default (``{kind: <default>}``)."""
        return self.validate({})

    def field(self) -> Any:
        """Annotation: ``Annotated[Base, REGISTRY.field()]`` validates against the registered models and
        serialises the backend's own fields."""
        return _Field(self)


class _Field:
    """Annotated metadata that expands into a plain validator (the registry's) plus subclass serialisation."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.validator = PlainValidator(registry.validate)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return handler(Annotated[SerializeAsAny[source], self.validator])  # type: ignore[misc]


def pluggable_registry(metadata: list[Any]) -> Registry | None:
    """The registry a field's ``Annotated`` metadata names, if any."""
    for item in metadata:
        if isinstance(item, _Field):
            return item.registry
    return None


def kind_of(model: type[BaseModel]) -> str:
    field = model.model_fields.get(DISCRIMINATOR)
    args = get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{model.__name__} must declare `{DISCRIMINATOR}: Literal['<name>']` to be registered")
    return args[0]


# --------------------------------------------------------------------------- the registries

METRICS = Registry("rollout.metrics", default="prometheus")
TARGETS = Registry("rollout.target", default="pulumi")
NOTIFIERS = Registry("rollout.notifications", default="webhook")
HOOKS = Registry("rollout.hooks")
SECTIONS: dict[str, type[BaseModel]] = {}
"""Stack-config sections a package owns (``gantry:sandbox``): registered by it, validated by config."""


def register_section(name: str, model: M) -> M:
    """Register the model of the stack-config section ``gantry:<name>`` (owned by the package that calls this)."""
    SECTIONS[name] = model
    return model


def section(name: str) -> Any:
    """Annotation metadata: validate a config key against the section model registered as ``name``."""
    def validate(value: object) -> Any:
        model = SECTIONS.get(name)
        if model is None or isinstance(value, model):
            return value
        return model.model_validate(value)
    return PlainValidator(validate)


def section_default(name: str) -> Callable[[], Any]:
    """A default factory: the registered section's defaults (``None`` while nothing registered it)."""
    def make() -> Any:
        model = SECTIONS.get(name)
        return model() if model is not None else None
    return make
