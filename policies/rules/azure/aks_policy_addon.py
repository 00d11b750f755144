"""aks-policy-addon: The Azure Policy add-on is on."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import ci_get, flag, mapping
from policies.rule import DEV, A, Fixture, M, resource_rule
from policies.rules.azure import AKS_CLUSTER


def aks_policy_addon(r: Resource, s: Settings) -> Outcome:
    if r.type != AKS_CLUSTER:
        return NOT_APPLICABLE
    addon = mapping(ci_get(mapping(r.props.get("addonProfiles")), "azurepolicy"))
    if flag(addon.get("enabled")) is True:
        return COMPLIANT
    return fail("addonProfiles.azurepolicy.enabled must be true (Azure Policy for AKS)")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, bad, ok

    r = b.res
    return [
        ok("on", r(T_AKS, b.aks_cluster())),
        ok("camel-case-key", r(T_AKS, b.aks_cluster(addonProfiles={"azurepolicy": None}) | {
            "addonProfiles": {"azurePolicy": {"enabled": True}}})),
        bad("off", r(T_AKS, b.aks_cluster(addonProfiles={"azurepolicy": {"enabled": False}}))),
    ]


RULE = resource_rule(
    "aks-policy-addon", aks_policy_addon,
    category="clusters-azure",
    level=M,
    tiers={DEV: A},
    description="The Azure Policy add-on is on.",
    remediation="Set addonProfiles.azurepolicy.enabled true.",
    fixtures=fixtures,
)
