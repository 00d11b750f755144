"""gke-no-legacy-auth: Legacy ABAC, basic auth and client certificates are off."""

from __future__ import annotations

from policies.model import NOT_APPLICABLE, Outcome, Resource, Settings, fail_all
from policies.props import flag, get
from policies.rule import Fixture, M, resource_rule
from policies.rules.gcp import GKE_CLUSTER


def gke_no_legacy_auth(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    out = []
    if flag(r.props.get("enableLegacyAbac")) is True:
        out.append("enableLegacyAbac must be false")
    if flag(get(r.props, "masterAuth.clientCertificateConfig.issueClientCertificate")) is True:
        out.append("masterAuth.clientCertificateConfig.issueClientCertificate must be false")
    if get(r.props, "masterAuth.username") or get(r.props, "masterAuth.password"):
        out.append("masterAuth must not set a basic-auth username or password")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, bad, ok

    r = b.res
    return [
        ok("defaults", r(T_GKE, b.gke_cluster())),
        bad("abac", r(T_GKE, b.gke_cluster(enableLegacyAbac=True))),
        bad("client-cert", r(T_GKE, b.gke_cluster(
            masterAuth={"clientCertificateConfig": {"issueClientCertificate": True}}))),
    ]


RULE = resource_rule(
    "gke-no-legacy-auth", gke_no_legacy_auth,
    category="clusters-gcp",
    level=M,
    description="Legacy ABAC, basic auth and client certificates are off.",
    remediation="Set enableLegacyAbac false and drop masterAuth credentials and client certificates.",
    fixtures=fixtures,
)
