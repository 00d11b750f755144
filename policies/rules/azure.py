"""AKS rules over raw ``azure-native:containerservice:*`` resources."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import ci_get, flag, get, mapping, strings

AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"
AKS_AGENTPOOL = "azure-native:containerservice:AgentPool"
OPEN = frozenset({"0.0.0.0/0", "*", "::/0"})


def aks_private_or_authorized_ips(r: Resource, s: Settings) -> Outcome:
    if r.type != AKS_CLUSTER:
        return NOT_APPLICABLE
    profile = mapping(r.props.get("apiServerAccessProfile"))
    if flag(profile.get("enablePrivateCluster")) is True:
        return COMPLIANT
    ranges = strings(profile.get("authorizedIPRanges"))
    if ranges and not OPEN.intersection(ranges):
        return COMPLIANT
    return fail("apiServerAccessProfile must set enablePrivateCluster true or authorizedIPRanges without "
                f"0.0.0.0/0, but {dict(profile) or 'nothing'} was given")


def aks_rbac_no_local_accounts(r: Resource, s: Settings) -> Outcome:
    if r.type != AKS_CLUSTER:
        return NOT_APPLICABLE
    out = []
    if flag(r.props.get("enableRBAC")) is False:
        out.append("enableRBAC must not be false")
    if flag(r.props.get("disableLocalAccounts")) is not True:
        out.append("disableLocalAccounts must be true")
    if flag(get(r.props, "aadProfile.managed")) is not True:
        out.append("aadProfile.managed must be true (Entra ID integration)")
    return fail_all(out)


def aks_policy_addon(r: Resource, s: Settings) -> Outcome:
    if r.type != AKS_CLUSTER:
        return NOT_APPLICABLE
    addon = mapping(ci_get(mapping(r.props.get("addonProfiles")), "azurepolicy"))
    if flag(addon.get("enabled")) is True:
        return COMPLIANT
    return fail("addonProfiles.azurepolicy.enabled must be true (Azure Policy for AKS)")


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
