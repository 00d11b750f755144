"""secrets-plain-input: one rule of the pack (see RULE below).

Inputs named like secrets (password, secret, token, privateKey...) hold Pulumi secrets, not plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail_all
from policies.props import seq
from policies.rule import DEV, A, Fixture, M, resource_rule

# The input's name ends with a word that marks a secret: masterPassword, authToken, privateKey, clientSecret.
SECRET_INPUT = re.compile(r"(password|passwd|passphrase|secret|token|privatekey|apikey|accesskey|secretkey|"
                          r"clientsecret|connectionstring|credentials?|sastoken)$", re.I)

# Keys whose children are the user's own names (tags, labels): a label called "token" is not an input.
_FREEFORM = frozenset({"tags", "tagsAll", "labels", "annotations", "resourceLabels", "defaultTags"})

# Inputs that hold a reference to a secret, not the secret: ARNs, Key Vault and Secret Manager ids.
_REFERENCE = re.compile(r"^(arn:|projects/[^/]+/secrets/|https://[^/]+\.vault\.azure\.net/|\[secret)")

MASKED = "[secret]"


def _plain_secrets(value: object, path: str, out: list[str], seen: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            key = str(key)
            where = f"{path}.{key}" if path else key
            if key in _FREEFORM:
                continue
            secretish = SECRET_INPUT.search(key) is not None and isinstance(child, str)
            if secretish:
                seen.append(where)
            if secretish and isinstance(child, str) and child.strip() \
                    and child != MASKED and not _REFERENCE.match(child) and child.lower() not in ("true", "false"):
                out.append(f"{where} holds a plain value; pass it as a Pulumi secret (config.require_secret or "
                           "pulumi.Output.secret) so it is encrypted in state and masked in output")
            else:
                _plain_secrets(child, where, out, seen)
    else:
        for i, item in enumerate(seq(value)):
            _plain_secrets(item, f"{path}[{i}]", out, seen)


def secrets_plain_input(r: Resource, s: Settings) -> Outcome:
    if r.type.startswith("pulumi:") or not r.props:
        return NOT_APPLICABLE
    out: list[str] = []
    seen: list[str] = []
    _plain_secrets(r.props, "", out, seen)
    if not seen:
        return NOT_APPLICABLE
    return fail_all(out) if out else COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_RDS, bad, ok

    r = b.res
    return [
        ok("pulumi-secret", r(T_RDS, {"engine": "postgres", "password": "[secret]", "tags": b.TAGS})),
        ok("secret-reference", r(T_RDS, {"engine": "postgres", "masterUserSecretKmsKeyId": "k",
                                         "masterPassword": "arn:aws:secretsmanager:eu:1:secret:x"})),
        bad("plain-password", r(T_RDS, {"engine": "postgres", "password": "hunter2"})),
        bad("nested-private-key", r("gcp:compute/instance:Instance", {"bootDisk": {
            "diskEncryptionKeyRaw": "x", "sourceImageEncryptionKey": {"rsaEncryptedKey": "y"}},
            "metadata": {"ssh-keys": "plain"}, "serviceAccount": {"privateKey": "-----BEGIN PRIVATE KEY-----"}})),
    ]


RULE = resource_rule(
    "secrets-plain-input", secrets_plain_input,
    category="secrets",
    level=M,
    tiers={DEV: A},
    description=(
        "Inputs named like secrets (password, secret, token, privateKey...) hold Pulumi secrets, not plain "
        "text."
    ),
    remediation="Read the value with config.require_secret or wrap it in pulumi.Output.secret.",
    fixtures=fixtures,
)
