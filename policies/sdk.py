"""What the provider SDKs say about a resource type: which input carries its tags or labels.

Read from the installed Python SDKs (the classes Pulumi registered for each type token), so the tags
rule covers every taggable type without a hand-kept list. Used by ``policies.rules.labels``.
"""

from __future__ import annotations

import functools
import importlib
import inspect

# The input that carries billing tags, per package: AWS and Azure ``tags``, GCP ``labels``.
TAG_INPUT = {"aws": "tags", "azure-native": "tags", "gcp": "labels"}


def resource_class(type_token: str) -> type | None:
    """The SDK class registered for a type token, or None when its package is not installed/loaded."""
    parts = type_token.split(":")
    if len(parts) != 3:
        return None
    package, module, _ = parts
    try:
        from pulumi.runtime import rpc

        registered = rpc._RESOURCE_MODULES.get(f"{package}:{module}", [])
    except Exception:  # a Pulumi SDK without the registry: no answer rather than a crash
        return None
    if not registered:
        _load(package)
        registered = rpc._RESOURCE_MODULES.get(f"{package}:{module}", [])
    for mod in registered:
        info = getattr(mod, "mod_info", None)
        if not isinstance(info, dict):
            continue
        name = info.get("classes", {}).get(type_token)
        if name:
            try:
                cls = getattr(importlib.import_module(str(info["fqn"])), str(name))
            except (ImportError, AttributeError):
                return None
            return cls if isinstance(cls, type) else None
    return None


def _load(package: str) -> None:
    module = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure-native": "pulumi_azure_native"}.get(package)
    if module is None:
        return
    try:  # importing the package registers its modules; it is already loaded after any render
        importlib.import_module(module)
    except ImportError:
        return


@functools.lru_cache(maxsize=4096)
def tag_input(type_token: str) -> str | None:
    """``tags``/``labels`` when the type's args accept a map of them, else None."""
    field = TAG_INPUT.get(type_token.split(":", 1)[0])
    if field is None:
        return None
    cls = resource_class(type_token)
    if cls is None:
        return None
    init = getattr(cls, "_internal_init", None) or getattr(cls, "__init__", None)
    if init is None:
        return None
    try:
        param = inspect.signature(init).parameters.get(field)
    except (TypeError, ValueError):
        return None
    # A map of strings: aws.autoscaling.Group takes a list of tag blocks, which carry no billing tags this way.
    if param is None or "Mapping" not in str(param.annotation):
        return None
    return field
