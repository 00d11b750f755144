"""Shapes of resource and invoke outputs, read from the provider SDKs' own type information.

Each provider SDK registers its resource modules with ``pulumi.runtime`` (type token -> Python class),
and every resource and invoke result class carries typed getters. ``pulumi._types`` turns those into
``{engineName: type}``. This module walks those types and builds a value of the right shape for
each, with strings chosen by a naming callback so that they look like the real cloud's values.
"""

from __future__ import annotations

import collections.abc
import importlib
import logging
import re
import sys
import typing
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)

MAX_DEPTH = 5

Namer = Callable[[str, str], str]
"""``namer(path, property)`` -> a realistic string for that property (path is dotted, for context)."""

_TYPES_CACHE: dict[object, dict[str, Any]] = {}


def _types_of(cls: type) -> dict[str, Any]:
    """``{engineName: type}`` for a resource or output type class, through the SDK's own helpers."""
    cached = _TYPES_CACHE.get(cls)
    if cached is not None:
        return cached
    from pulumi import _types

    found: dict[str, Any] = {}
    try:
        reader = _types.output_type_types if _types.is_output_type(cls) else _types.resource_types
        found = dict(reader(cls))
    except Exception as exc:  # an SDK whose annotations do not resolve: no shape, never a crash
        _log.debug("no input/output shape for %s: %r", cls, exc)
        found = {}
    found.pop("id", None)
    found.pop("urn", None)
    _TYPES_CACHE[cls] = found
    return found


def resource_class(type_token: str) -> type | None:
    """The SDK class registered for a resource type token (``aws:lb/loadBalancer:LoadBalancer``)."""
    from pulumi.runtime import rpc

    parts = type_token.split(":")
    if len(parts) != 3:
        return None
    pkg, mod, _ = parts
    modules = getattr(rpc, "_RESOURCE_MODULES", {}).get(f"{pkg}:{mod}") or []
    for module in modules:
        info = getattr(module, "mod_info", None) or getattr(module, "_mod_info", None)
        if not isinstance(info, dict):
            continue
        class_name = info.get("classes", {}).get(type_token)
        fqn = info.get("fqn")
        if class_name and fqn:
            try:
                return typing.cast(type, getattr(importlib.import_module(fqn), class_name))
            except Exception as exc:  # an SDK module that does not import: the resource keeps no shape
                _log.debug("cannot load %s.%s: %r", fqn, class_name, exc)
                return None
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def invoke_result_class(token: str) -> type | None:
    """The SDK's result class for an invoke token (``aws:ec2/getAmi:getAmi`` -> ``GetAmiResult``)."""
    parts = token.split(":")
    if len(parts) != 3:
        return None
    pkg, mod, fn = parts
    package = "pulumi_" + pkg.replace("-", "_")
    if package not in sys.modules:
        return None  # the program never imported this SDK, so it cannot have called it
    mod_path = [p for p in mod.split("/")[:-1] if p != "index"] if "/" in mod else (
        [] if mod == "index" else [mod])
    wanted = fn[:1].upper() + fn[1:] + "Result"
    for candidate in (".".join([package, *mod_path, _snake(fn)]), ".".join([package, *mod_path])):
        module = sys.modules.get(candidate)
        if module is None:
            try:
                module = importlib.import_module(candidate)
            except Exception as exc:  # not this candidate module: try the next
                _log.debug("cannot import %s: %r", candidate, exc)
                continue
        cls = getattr(module, wanted, None)
        if isinstance(cls, type):
            return cls
    return None


def _unwrap(tp: Any) -> Any:
    """Drop ``Output[...]``, ``Optional[...]`` and ``Input[...]`` layers."""
    from pulumi import Output

    for _ in range(6):
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is Output and args:
            tp = args[0]
        elif origin is typing.Union:
            non_none = [a for a in args if a is not type(None)]
            tp = non_none[0] if non_none else str
        else:
            return tp
    return tp


def shape_value(tp: Any, path: str, prop: str, namer: Namer, depth: int = 0) -> object:
    """A deterministic value of type ``tp``; lists hold one element and objects every field."""
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    if tp is str or tp is Any:
        return namer(path, prop)
    if tp is bool:
        return False
    if tp is int:
        return 1
    if tp is float:
        return 1.0
    if origin in (list, collections.abc.Sequence, typing.Sequence) or tp in (list, collections.abc.Sequence):
        args = typing.get_args(tp)
        if depth >= MAX_DEPTH or not args:
            return []
        return [shape_value(args[0], f"{path}[0]", prop, namer, depth + 1)]
    if origin in (dict, collections.abc.Mapping, typing.Mapping) or tp in (dict, collections.abc.Mapping):
        return {}
    if isinstance(tp, type) and depth < MAX_DEPTH:
        fields = _types_of(tp)
        if fields:
            return {name: shape_value(sub, f"{path}.{name}" if path else name, name, namer, depth + 1)
                    for name, sub in fields.items()}
        return {}
    if isinstance(tp, type):
        return {}
    return namer(path, prop)


def shape_of(cls: type, namer: Namer, skip: collections.abc.Container[str] = ()) -> dict[str, object]:
    """Every declared output of ``cls`` not in ``skip``, shaped by its type."""
    return {name: shape_value(tp, name, name, namer) for name, tp in _types_of(cls).items() if name not in skip}


def declared(cls: type) -> dict[str, Any]:
    """The declared ``{engineName: type}`` of a resource or result class (cached)."""
    return _types_of(cls)
