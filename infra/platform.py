"""Builds the platform a stack describes from components; called only by the Pulumi program.

Data flows one way: typed config -> components -> resources -> outputs. Nothing here is faked:
a part that a stack does not configure is simply not built. Each service's rollout progress comes
from the stack's previous outputs and gantry's step (``infra.progress``), never from the stack file.
"""

from __future__ import annotations

import pulumi

from components.k8s.outputs import ServiceOutputs
from components.spec import Cloud
from infra.config import GantryConfig
from infra.progress import instruction_from_env, previous_services, read_own_outputs, resolve_services


def build_platform(cfg: GantryConfig) -> dict[str, pulumi.Input[object]]:
    """Create the cluster and the delivery services; return the stack outputs."""
    resolved = resolve_services(cfg.services, previous_services(read_own_outputs() if cfg.services else None),
                                instruction_from_env(pulumi.get_stack()))
    exports: dict[str, pulumi.Input[object]] = {
        "cloud": cfg.cloud.value,
        "environment": cfg.environment,
        "tier": cfg.tier.value,
    }
    if cfg.cloud is Cloud.LOCAL or cfg.cluster is None or cfg.region is None:
        # The local sandbox serves services from HAProxy. Services the rollout engine drives through
        # `pulumi up` and judges on the sandbox (stack local-engine) get their HAProxy slots and weights
        # as dynamic-provider resources; the others are shifted by HaproxyTarget outside Pulumi.
        exports["services"] = {
            name: ServiceOutputs.build(spec, desired_image=desired, rollout=progress.rollout).to_json()
            for name, (spec, desired, progress) in resolved.items()}
        # Only services judged on the sandbox's own series are served by it; a local stack without the
        # sandbox (a bare `pulumi` target) has its services' outputs and nothing else.
        engine_driven = {name: spec for name, (spec, _, _) in resolved.items()
                         if cfg.rollout_for(name).target.program_routes and cfg.rollout_for(name).metrics.local}
        if engine_driven:
            from infra.sandbox.haproxy_provider import SandboxRouting, sandbox_dir_of_project

            directory = sandbox_dir_of_project()
            routing = {name: SandboxRouting(name, svc, sandbox_dir=directory, faults=cfg.sandbox.faults)
                       for name, svc in sorted(engine_driven.items())}
            exports["routing"] = {name: {"weights": r.weights, "addresses": r.addresses}
                                  for name, r in routing.items()}
        return exports

    from components.cluster import build_cluster
    from components.k8s import build_service
    from components.spec import Tier

    # In prod the cluster, its keys and everything under them are protected (children inherit protect):
    # deleting them loses data; tearing prod down takes an explicit `pulumi state unprotect`.
    cluster = build_cluster(
        cfg.cluster.name, cfg.cluster, cloud=cfg.cloud, region=cfg.region, tier=cfg.tier,
        tags=cfg.tags, project=cfg.project,
        opts=pulumi.ResourceOptions(protect=True) if cfg.tier is Tier.PROD else None,
    )
    exports["clusterName"] = cluster.cluster_name
    exports["clusterEndpoint"] = cluster.endpoint
    exports["kubeconfig"] = cluster.kubeconfig  # already a secret Output
    if cluster.metrics_url is not None:
        # Where rollouts read health metrics when the stack's rollout.metrics.url is unset.
        exports["metrics"] = {"url": cluster.metrics_url, "auth": cluster.metrics_auth, "region": cfg.region}
    on_cluster = pulumi.ResourceOptions(provider=cluster.provider)
    services: dict[str, pulumi.Input[object]] = {}
    for name, (spec, desired, progress) in resolved.items():
        delivered = build_service(name, spec, tier=cfg.tier, opts=on_cluster)
        services[name] = delivered.outputs.tracked(desired_image=desired, rollout=progress.rollout).to_json()
    exports["services"] = services
    if cfg.dr is not None and cfg.dr.records:
        from infra.dr.traffic import build_traffic_switch

        exports["dr"] = build_traffic_switch(cfg, resource_group_name=getattr(cluster, "resource_group_name", None))
    return exports
