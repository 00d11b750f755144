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
