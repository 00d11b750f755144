"""``SecretValue``: the placeholder a ``secure:`` stack value becomes when Gantry reads a stack file offline.

Defined here, below both ``infra.config`` and ``infra.settings.rollout``, so settings can refuse a secure
value where Gantry would need the plaintext (a webhook URL, a hook's environment) with an accurate message.
"""

from __future__ import annotations


class SecretValue(str):
    """A ``secure:`` config value that cannot be decrypted offline; renders as a placeholder."""

    __slots__ = ()

    def __new__(cls, name: str = "secret") -> SecretValue:
        return super().__new__(cls, f"[secret:{name}]")


def unsecure(value: object, name: str) -> tuple[object, bool]:
    """``value`` with every ``{secure: ...}`` inside replaced by a ``SecretValue`` named by its path
    (``services.web.token``, ``hooks[0]``), and whether there was one. The one reader of ``secure:`` values:
    the stack-config loader and the renderer both call it."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SecretValue(name), True
        pairs = [(k, unsecure(v, f"{name}.{k}")) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, any(found for _, (_, found) in pairs)
    if isinstance(value, list):
        items = [unsecure(v, f"{name}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], any(found for _, found in items)
    return value, False

