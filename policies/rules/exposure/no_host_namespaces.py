"""no-host-namespaces: Pods do not share the node's network, PID or IPC namespaces."""

from __future__ import annotations

from policies import k8s
from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import flag
from policies.rule import Fixture, M, resource_rule


def no_host_namespaces(r: Resource, s: Settings) -> Outcome:
    spec = k8s.pod_spec(r.type, r.props)
    if spec is None:
        return NOT_APPLICABLE
    shared = [k for k in ("hostNetwork", "hostPID", "hostIPC") if flag(spec.get(k)) is True]
    if shared:
        return fail(f"the pod spec must not set {', '.join(shared)} true")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_CRON, T_DEP, bad, ok

    r = b.res
    return [
        ok("plain", r(T_DEP, b.deployment())),
        bad("host-network", r(T_DEP, b.deployment(pod={"hostNetwork": True}))),
        bad("cronjob-host-pid", r(T_CRON, {"metadata": {"namespace": "ops"}, "spec": {
            "schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": b.pod_spec(hostPID=True)}}}}})),
    ]


RULE = resource_rule(
    "no-host-namespaces", no_host_namespaces,
    category="exposure",
    level=M,
    description="Pods do not share the node's network, PID or IPC namespaces.",
    remediation="Remove hostNetwork, hostPID and hostIPC.",
    fixtures=fixtures,
)
