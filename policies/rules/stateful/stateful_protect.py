"""stateful-protect: Databases, buckets, keys and clusters are protected from deletion in prod."""

from __future__ import annotations

import re

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.rule import Fixture, M, resource_rule

# Type tokens whose deletion loses data or breaks everything that depends on them.
STATEFUL = re.compile(
    r"^(aws:(rds/(instance|cluster):|dynamodb/table:|s3/bucket(V2)?:|kms/key:|eks/cluster:|efs/fileSystem:|"
    r"elasticache/(cluster|replicationGroup):|docdb/cluster:|neptune/cluster:|redshift/cluster:|opensearch/domain:)"
    r"|gcp:(sql/databaseInstance:|storage/bucket:|kms/(cryptoKey|keyRing):|container/cluster:|bigtable/instance:|"
    r"spanner/instance:|redis/instance:|firestore/database:)"
    r"|azure-native:(storage:StorageAccount|keyvault:(Vault|Key)|containerservice:ManagedCluster|sql:(Server|"
    r"Database)|dbforpostgresql:(Server|FlexibleServer)|dbformysql:(Server|FlexibleServer)|documentdb:"
    r"DatabaseAccount|cache:Redis)$)")


def stateful_protect(r: Resource, s: Settings) -> Outcome:
    if not s.prod or not STATEFUL.match(r.type):
        return NOT_APPLICABLE
    if r.protect:
        return COMPLIANT
    return fail("protect must be on for a stateful resource in prod; set ResourceOptions(protect=True) (Gantry "
                "components do this in prod)")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, T_RDS, bad, ok

    r = b.res
    return [
        ok("protected-db", r(T_RDS, {"engine": "postgres"}, protect=True)),
        bad("unprotected-bucket", r("aws:s3/bucket:Bucket", {"bucket": "orders"})),
        bad("unprotected-gke", r(T_GKE, b.gke_cluster())),
    ]


RULE = resource_rule(
    "stateful-protect", stateful_protect,
    category="stateful",
    level=M,
    description="Databases, buckets, keys and clusters are protected from deletion in prod.",
    remediation="Pass ResourceOptions(protect=True) to the resource in prod.",
    fixtures=fixtures,
)
