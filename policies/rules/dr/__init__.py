"""Disaster-recovery rules: the DNS failover between a primary and a standby region (issue 18).

Shared by the rule modules of this category (one rule per module): which resources are failover answers on
each cloud. Gantry's components (``components/failover.py`` and ``components/{aws,gcp,azure}/failover.py``)
render Route 53 failover records with health checks, a Cloud DNS primary/backup routing policy with a health
check, and a Traffic Manager profile with priority routing; raw programs are judged the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import Resource
from policies.props import get, mapping, maps, text

CATEGORY = "dr"

R53_RECORD = "aws:route53/record:Record"
DNS_RECORDSET = "gcp:dns/recordSet:RecordSet"
TM_PROFILES = frozenset({"azure-native:trafficmanager:Profile", "azure-native:network:Profile"})
TM_ENDPOINTS = frozenset({"azure-native:trafficmanager:Endpoint", "azure-native:network:Endpoint"})


def r53_failover_role(r: Resource) -> str | None:
    """``PRIMARY``/``SECONDARY`` for a Route 53 failover record, else None."""
    if r.type != R53_RECORD:
        return None
    policies = maps(r.props.get("failoverRoutingPolicies"))
    if not policies:
        return None
    return text(policies[0].get("type")) or "?"


def cloud_dns_primary_backup(r: Resource) -> Mapping[str, object] | None:
    """The ``routingPolicy.primaryBackup`` block of a Cloud DNS record set, else None."""
    if r.type != DNS_RECORDSET:
        return None
    block = mapping(get(r.props, "routingPolicy.primaryBackup"))
    return block or None


def is_priority_profile(r: Resource) -> bool:
    """A Traffic Manager profile that fails over by priority."""
    return r.type in TM_PROFILES and str(r.props.get("trafficRoutingMethod", "")).lower() == "priority"
