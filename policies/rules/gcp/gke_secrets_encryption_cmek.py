"""gke-secrets-encryption-cmek: Application-layer secrets encryption with a customer-managed Cloud KMS key."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import mapping
from policies.rule import Fixture, M, resource_rule
from policies.rules.gcp import GKE_CLUSTER


def gke_secrets_encryption_cmek(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    db = mapping(r.props.get("databaseEncryption"))
    if db.get("state") == "ENCRYPTED" and db.get("keyName"):
        return COMPLIANT
    return fail("databaseEncryption must have state 'ENCRYPTED' and a Cloud KMS keyName, but "
                f"{dict(db) or 'nothing'} was given")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, bad, ok

    r = b.res
    return [
        ok("encrypted", r(T_GKE, b.gke_cluster())),
        bad("decrypted", r(T_GKE, b.gke_cluster(databaseEncryption={"state": "DECRYPTED"}))),
    ]


RULE = resource_rule(
    "gke-secrets-encryption-cmek", gke_secrets_encryption_cmek,
    category="clusters-gcp",
    level=M,
    description="Application-layer secrets encryption with a customer-managed Cloud KMS key.",
    remediation="Set databaseEncryption {state: 'ENCRYPTED', keyName: <CryptoKey id>}.",
    fixtures=fixtures,
)
