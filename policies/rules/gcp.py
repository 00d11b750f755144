"""GKE rules over raw ``gcp:container/*`` resources (Gantry's GKE component and raw programs alike)."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import flag, get, mapping, maps, strings, text

GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODEPOOL = "gcp:container/nodePool:NodePool"
OPEN = frozenset({"0.0.0.0/0", "::/0"})


def gke_private_cluster(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    if flag(get(r.props, "privateClusterConfig.enablePrivateNodes")) is True:
        return COMPLIANT
    return fail("privateClusterConfig.enablePrivateNodes must be true, so nodes get no public IPs")


def gke_master_authorized_networks(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    if flag(get(r.props, "privateClusterConfig.enablePrivateEndpoint")) is True:
        return COMPLIANT
    man = r.props.get("masterAuthorizedNetworksConfig")
    if not isinstance(man, Mapping):
        return fail("the control plane has a public endpoint and no masterAuthorizedNetworksConfig; enable "
                    "privateClusterConfig.enablePrivateEndpoint or list authorized cidrBlocks")
    opened = [c for c in (text(b.get("cidrBlock")) for b in maps(man.get("cidrBlocks"))) if c in OPEN]
    if opened:
        return fail("masterAuthorizedNetworksConfig.cidrBlocks must not include 0.0.0.0/0")
    return COMPLIANT


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


def gke_secrets_encryption_cmek(r: Resource, s: Settings) -> Outcome:
    if r.type != GKE_CLUSTER:
        return NOT_APPLICABLE
    db = mapping(r.props.get("databaseEncryption"))
    if db.get("state") == "ENCRYPTED" and db.get("keyName"):
        return COMPLIANT
    return fail("databaseEncryption must have state 'ENCRYPTED' and a Cloud KMS keyName, but "
                f"{dict(db) or 'nothing'} was given")


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
