"""Partial masking of secret JSON text: only the secret values inside an ECS ``containerDefinitions`` document.

Used by the render harness's masking (``capture.reveal_secret_text``), so it imports only the standard
library. A task definition built with ``json.dumps`` over a secret becomes one secret string, and masking it
whole hides the images and environment that policy rules must see. Offline, the only secret values are
Gantry's ``[secret:<key>]`` placeholders for config that cannot be decrypted; so inside a container-definitions
document the placeholders, and every environment value whose name marks a secret, are masked, and the rest
stays readable. Anything else secret stays wholly masked.
"""

from __future__ import annotations

import json
import re
from typing import Any

SECRET = "[secret]"
PLACEHOLDER = re.compile(r"\[secret:[^\]]*\]")
SECRET_NAME = re.compile(r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY)", re.I)


def _is_container_definitions(doc: Any) -> bool:
    return isinstance(doc, list) and bool(doc) and all(
        isinstance(c, dict) and isinstance(c.get("image"), str) and "name" in c for c in doc)


def _mask_leaves(value: Any) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(SECRET, value)
    if isinstance(value, dict):
        return {k: _mask_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_leaves(v) for v in value]
    return value


def mask_secret_text(text: str) -> str | None:
    """The document with only its secret values masked, or None when it must be masked whole."""
    if not text.lstrip().startswith("["):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not _is_container_definitions(doc):
        return None
    masked = _mask_leaves(doc)
    for container in masked:
        for env in container.get("environment") or []:
            if isinstance(env, dict) and SECRET_NAME.search(str(env.get("name", ""))) and "value" in env:
                env["value"] = SECRET
    return json.dumps(masked)
