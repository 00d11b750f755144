"""eks-secrets-encryption: Kubernetes secrets are envelope-encrypted with a KMS key."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import get, mapping, maps, strings
from policies.rule import Fixture, M, resource_rule
from policies.rules.aws import EKS_CLUSTER


def eks_secrets_encryption(r: Resource, s: Settings) -> Outcome:
    if r.type != EKS_CLUSTER:
        return NOT_APPLICABLE
    raw = r.props.get("encryptionConfig")
    # pulumi-aws 7 takes one object; older programs pass a list of them.
    configs = [mapping(raw)] if isinstance(raw, Mapping) else maps(raw)
    for cfg in configs:
        if "secrets" in strings(cfg.get("resources")) and get(cfg, "provider.keyArn"):
            return COMPLIANT
    return fail("encryptionConfig must encrypt 'secrets' with a KMS key (provider.keyArn), but it is not set")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_EKS, bad, ok

    r = b.res
    return [
        ok("kms", r(T_EKS, b.eks_cluster())),
        ok("legacy-list-form", r(T_EKS, b.eks_cluster(
            encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": b.KEY_ARN}}]))),
        bad("none", r(T_EKS, b.eks_cluster(encryptionConfig=None))),
    ]


RULE = resource_rule(
    "eks-secrets-encryption", eks_secrets_encryption,
    category="clusters-aws",
    level=M,
    description="Kubernetes secrets are envelope-encrypted with a KMS key.",
    remediation="Set encryptionConfig {resources: ['secrets'], provider: {keyArn}} (Gantry: encryption.createKey).",
    fixtures=fixtures,
)
