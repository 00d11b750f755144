"""aks-monitoring: Container insights or managed Prometheus is on."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import ci_get, flag, get, mapping
from policies.rule import DEV, A, Fixture, M, resource_rule
from policies.rules.azure import AKS_CLUSTER


def aks_monitoring(r: Resource, s: Settings) -> Outcome:
    if r.type != AKS_CLUSTER:
        return NOT_APPLICABLE
    oms = mapping(ci_get(mapping(r.props.get("addonProfiles")), "omsagent"))
    if flag(oms.get("enabled")) is True:
        return COMPLIANT
    if flag(get(r.props, "azureMonitorProfile.metrics.enabled")) is True:
        return COMPLIANT
    return fail("container insights must be on: set addonProfiles.omsagent.enabled true with a Log Analytics "
                "workspace, or azureMonitorProfile.metrics.enabled true")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, bad, ok

    r = b.res
    return [
        ok("omsagent", r(T_AKS, b.aks_cluster())),
        ok("managed-prometheus", r(T_AKS, b.aks_cluster(
            addonProfiles={"omsagent": None}, azureMonitorProfile={"metrics": {"enabled": True}}))),
        bad("none", r(T_AKS, b.aks_cluster(addonProfiles={"omsagent": None}))),
    ]


RULE = resource_rule(
    "aks-monitoring", aks_monitoring,
    category="clusters-azure",
    level=M,
    tiers={DEV: A},
    description="Container insights or managed Prometheus is on.",
    remediation="Enable addonProfiles.omsagent with a Log Analytics workspace, or azureMonitorProfile.metrics.",
    fixtures=fixtures,
)
