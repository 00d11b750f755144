"""Tolerant readers for engine-form props, used by every rule module.

Props arrive as plain JSON-like values, with unknown values (``None`` or the mocks' placeholders) where a
preview cannot know them; these helpers never raise on a missing or oddly typed key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.model import Props

EMPTY: Mapping[str, object] = {}


def get(props: object, path: str) -> object:
    """``get(p, "vpcConfig.endpointPublicAccess")``; None when any step is missing."""
    current: object = props
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else EMPTY


def seq(value: object) -> Sequence[object]:
    # Any sequence but text: CrossGuard hands rules read-only list proxies, not lists.
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def maps(value: object) -> list[Mapping[str, object]]:
    return [v for v in seq(value) if isinstance(v, Mapping)]


def strings(value: object) -> list[str]:
    return [str(v) for v in seq(value) if isinstance(v, str | int | float)]


def flag(value: object) -> bool | None:
    """A boolean that may have been written as a string (tags, annotations, JSON config)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def integer(value: object) -> int | None:
    n = number(value)
    return int(n) if n is not None and n == int(n) else None


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def ci_get(props: Props, key: str) -> object:
    """Case-insensitive key lookup (Azure addon names are written ``omsagent`` or ``omsAgent``)."""
    for k, v in props.items():
        if k.lower() == key.lower():
            return v
    return None


def duration_seconds(value: object) -> float | None:
    """GCP durations such as ``"7776000s"``."""
    if isinstance(value, str) and value.endswith("s"):
        return number(value[:-1])
    return number(value)


def minor_version(value: object) -> str | None:
    """``"1.33.2-gke.100"`` -> ``"1.33"``."""
    if not isinstance(value, str) and not isinstance(value, int | float):
        return None
    parts = str(value).lstrip("v").split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    minor = "".join(ch for ch in parts[1] if ch.isdigit())
    return f"{parts[0]}.{minor}" if minor else None


def provider_config(props: Mapping[str, object]) -> dict[str, object]:
    """Provider inputs as rules expect them: the engine sends object-valued provider settings
    (``defaultTags``, ``defaultLabels``) as JSON text, so decode those."""
    import json

    out: dict[str, object] = {}
    for key, value in props.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out
