"""Stateful resources in prod: databases, buckets, keys and clusters must be protected from deletion."""

from __future__ import annotations

import re
from collections.abc import Sequence

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, StackOutcome, fail

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


def opaque_component(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    """A component with no children was built by another language's provider (pulumi_eks.Cluster): the
    render never sees inside it, so say so instead of passing it silently."""
    parents = {r.parent for r in resources if r.parent}
    out: list[StackOutcome] = []
    for r in resources:
        if r.custom or r.type.startswith("pulumi:"):
            continue
        if r.urn in parents:
            out.append(StackOutcome(r.urn, COMPLIANT))
            continue
        out.append(StackOutcome(r.urn, fail(f"opaque component: its children were not analysed ({r.type} "
                                            "registers them in another language's provider); check them with "
                                            "`pulumi preview --policy-pack policies`")))
    return out
