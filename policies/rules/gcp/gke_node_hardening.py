"""gke-node-hardening: Workload Identity, shielded nodes, and the legacy metadata endpoints off."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import NOT_APPLICABLE, Outcome, Resource, Settings, fail_all
from policies.props import flag, get, mapping, text
from policies.rule import Fixture, M, resource_rule
from policies.rules.gcp import GKE_CLUSTER, GKE_NODEPOOL


def _node_config_problems(node_config: Mapping[str, object], path: str) -> list[str]:
    out = []
    mode = text(get(node_config, "workloadMetadataConfig.mode"))
    if mode != "GKE_METADATA":
        out.append(f"{path}.workloadMetadataConfig.mode must be 'GKE_METADATA' (Workload Identity), "
                   f"but {mode!r} was given")
    if flag(get(node_config, "shieldedInstanceConfig.enableIntegrityMonitoring")) is False:
        out.append(f"{path}.shieldedInstanceConfig.enableIntegrityMonitoring must not be false")
    if flag(get(node_config, "metadata.disable-legacy-endpoints")) is False:
        out.append(f"{path}.metadata.disable-legacy-endpoints must not be 'false' (legacy metadata API)")
    return out


def gke_node_hardening(r: Resource, s: Settings) -> Outcome:
    if r.type == GKE_CLUSTER:
        out = []
        if not get(r.props, "workloadIdentityConfig.workloadPool"):
            out.append("workloadIdentityConfig.workloadPool must be set (Workload Identity)")
        if flag(r.props.get("enableShieldedNodes")) is False:
            out.append("enableShieldedNodes must not be false")
        # The default pool's config only matters while the default pool is kept.
        if flag(r.props.get("removeDefaultNodePool")) is not True and mapping(r.props.get("nodeConfig")):
            out += _node_config_problems(mapping(r.props.get("nodeConfig")), "nodeConfig")
        return fail_all(out)
    if r.type == GKE_NODEPOOL:
        return fail_all(_node_config_problems(mapping(r.props.get("nodeConfig")), "nodeConfig"))
    return NOT_APPLICABLE


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_GKE, T_GNP, bad, ok

    r = b.res
    return [
        ok("cluster", r(T_GKE, b.gke_cluster())),
        ok("pool", r(T_GNP, b.gke_nodepool())),
        bad("no-workload-identity", r(T_GKE, b.gke_cluster(workloadIdentityConfig=None))),
        bad("pool-legacy-metadata", r(T_GNP, b.gke_nodepool(
            nodeConfig={"workloadMetadataConfig": {"mode": "GCE_METADATA"}}))),
    ]


RULE = resource_rule(
    "gke-node-hardening", gke_node_hardening,
    category="clusters-gcp",
    level=M,
    description="Workload Identity, shielded nodes, and the legacy metadata endpoints off.",
    remediation=(
        "Set workloadIdentityConfig.workloadPool, enableShieldedNodes, and nodeConfig.workloadMetadataConfig "
        "mode GKE_METADATA on every pool."
    ),
    fixtures=fixtures,
)
