"""aks-rbac-no-local-accounts: Kubernetes RBAC with Entra ID, and local accounts disabled."""

from __future__ import annotations

from policies.model import NOT_APPLICABLE, Outcome, Resource, Settings, fail_all
from policies.props import flag, get
from policies.rule import Fixture, M, resource_rule
from policies.rules.azure import AKS_CLUSTER


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, bad, ok

    r = b.res
    return [
        ok("aad", r(T_AKS, b.aks_cluster())),
        bad("local-accounts", r(T_AKS, b.aks_cluster(disableLocalAccounts=False))),
    ]


RULE = resource_rule(
    "aks-rbac-no-local-accounts", aks_rbac_no_local_accounts,
    category="clusters-azure",
    level=M,
    description="Kubernetes RBAC with Entra ID, and local accounts disabled.",
    remediation="Set enableRBAC true, aadProfile.managed true and disableLocalAccounts true.",
    fixtures=fixtures,
)
