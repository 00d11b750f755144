"""gke-logging-monitoring: Cloud Logging (system and API server) and Cloud Monitoring are on."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import NOT_APPLICABLE, Outcome, Resource, Settings, fail_all
from policies.props import strings
from policies.rule import DEV, A, Fixture, M, resource_rule
from policies.rules.gcp import GKE_CLUSTER


def gke_logging_monitoring(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    out = []
    if r.props.get("loggingService") == "none":
        out.append("loggingService must not be 'none'")
    if r.props.get("monitoringService") == "none":
        out.append("monitoringService must not be 'none'")
    logging = r.props.get("loggingConfig")
    if isinstance(logging, Mapping):
        components = strings(logging.get("enableComponents"))
        for needed in ("SYSTEM_COMPONENTS", "APISERVER"):
            if needed not in components:
                out.append(f"loggingConfig.enableComponents must include {needed}")
    monitoring = r.props.get("monitoringConfig")
    if isinstance(monitoring, Mapping) and "enableComponents" in monitoring \
            and "SYSTEM_COMPONENTS" not in strings(monitoring.get("enableComponents")):
        out.append("monitoringConfig.enableComponents must include SYSTEM_COMPONENTS")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, bad, ok

    r = b.res
    return [
        ok("on", r(T_GKE, b.gke_cluster())),
        bad("logging-none", r(T_GKE, b.gke_cluster(loggingService="none", loggingConfig=None))),
        bad("no-apiserver-logs", r(T_GKE, b.gke_cluster(
            loggingConfig={"enableComponents": ["WORKLOADS"]}))),
    ]


RULE = resource_rule(
    "gke-logging-monitoring", gke_logging_monitoring,
    category="clusters-gcp",
    level=M,
    tiers={DEV: A},
    description="Cloud Logging (system and API server) and Cloud Monitoring are on.",
    remediation="Leave loggingService/monitoringService at their defaults and include SYSTEM_COMPONENTS and APISERVER.",
    fixtures=fixtures,
)
