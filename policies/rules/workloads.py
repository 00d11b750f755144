"""Workload rules over every pod-bearing Kubernetes kind (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from components.validation import check_image
from policies import k8s
from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    StackOutcome,
    fail,
    fail_all,
)
from policies.props import flag, get, integer, mapping, maps, strings, text

SECRET_NAME = re.compile(r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY)", re.I)


ECS_TASK = "aws:ecs/taskDefinition:TaskDefinition"


def ecs_containers(r: Resource) -> list[tuple[str, Mapping[str, object]]] | None:
    """An ECS task definition's containers: ``containerDefinitions`` is JSON text (or already a list)."""
    if r.type != ECS_TASK:
        return None
    raw = r.props.get("containerDefinitions")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None  # wholly masked ("[secret]") or not JSON: nothing to judge
    return [(text(c.get("name")) or f"#{i}", c) for i, c in enumerate(maps(raw))]


def _each_container(r: Resource, *, init: bool = True) -> list[tuple[str, Mapping[str, object]]] | None:
    spec = k8s.pod_spec(r.type, r.props)
    if spec is None:
        return None
    return [(k8s.cname(c, i), c) for i, c in enumerate(k8s.containers(spec, init=init))]


def container_resources(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        res = mapping(c.get("resources"))
        missing = [p for p in ("requests.cpu", "requests.memory", "limits.memory") if get(res, p) is None]
        if missing:
            out.append(f"container {name} must set resources {', '.join(missing)}")
    return fail_all(out)


def container_probes(r: Resource, s: Settings) -> Outcome:
    if r.type in (k8s.JOB, k8s.CRONJOB):
        return NOT_APPLICABLE  # run-to-completion pods are not routed to
    items = _each_container(r, init=False)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        missing = [p for p in ("readinessProbe", "livenessProbe") if not mapping(c.get(p))]
        if missing:
            out.append(f"container {name} must define {' and '.join(missing)}")
    return fail_all(out)


def image_pinned(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r) if r.type != ECS_TASK else ecs_containers(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        out += [f"container {name}: {v}" for v in check_image("image", c.get("image"))]
    return fail_all(out)


def _sc(c: Mapping[str, object]) -> Mapping[str, object]:
    return mapping(c.get("securityContext"))


def no_privilege_escalation(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        if flag(_sc(c).get("privileged")) is True:
            out.append(f"container {name} must not be privileged")
        # The kernel default allows escalation, so only an explicit false counts.
        if flag(_sc(c).get("allowPrivilegeEscalation")) is not False:
            out.append(f"container {name} must set securityContext.allowPrivilegeEscalation false")
    return fail_all(out)


def run_as_non_root(r: Resource, s: Settings) -> Outcome:
    spec = k8s.pod_spec(r.type, r.props)
    items = _each_container(r)
    if spec is None or items is None:
        return NOT_APPLICABLE
    pod = mapping(spec.get("securityContext"))
    out = []
    for name, c in items:
        non_root = flag(_sc(c).get("runAsNonRoot"))
        if non_root is None:
            non_root = flag(pod.get("runAsNonRoot"))
        user = integer(_sc(c).get("runAsUser") if _sc(c).get("runAsUser") is not None else pod.get("runAsUser"))
        if non_root is not True or user == 0:
            out.append(f"container {name} must run with runAsNonRoot true and a non-zero runAsUser")
    return fail_all(out)


def readonly_root_filesystem(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r)
    if items is None:
        return NOT_APPLICABLE
    return fail_all([f"container {name} must set securityContext.readOnlyRootFilesystem true"
                     for name, c in items if flag(_sc(c).get("readOnlyRootFilesystem")) is not True])


def drop_capabilities_seccomp(r: Resource, s: Settings) -> Outcome:
    spec = k8s.pod_spec(r.type, r.props)
    items = _each_container(r)
    if spec is None or items is None:
        return NOT_APPLICABLE
    pod_seccomp = text(get(spec, "securityContext.seccompProfile.type"))
    out = []
    for name, c in items:
        if "ALL" not in strings(get(_sc(c), "capabilities.drop")):
            out.append(f"container {name} must drop ALL capabilities")
        seccomp = text(get(_sc(c), "seccompProfile.type")) or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {name} must use seccompProfile RuntimeDefault or Localhost, "
                       f"but {seccomp!r} was given")
    return fail_all(out)


def sa_token_no_automount(r: Resource, s: Settings) -> Outcome:
    if r.type == "kubernetes:core/v1:ServiceAccount":
        if flag(r.props.get("automountServiceAccountToken")) is False:
            return COMPLIANT
        return fail("automountServiceAccountToken must be false on the ServiceAccount")
    spec = k8s.pod_spec(r.type, r.props)
    if spec is None:
        return NOT_APPLICABLE
    if flag(spec.get("automountServiceAccountToken")) is False:
        return COMPLIANT
    return fail("the pod spec must set automountServiceAccountToken false (mount a projected token only where "
                "the API is needed)")


def no_default_namespace(r: Resource, s: Settings) -> Outcome:
    if not k8s.is_namespaced(r.type):
        return NOT_APPLICABLE
    ns = k8s.namespace_of(r)
    if ns == "default":
        return fail("metadata.namespace must be an explicit namespace other than 'default', but "
                    f"{get(r.props, 'metadata.namespace')!r} was given")
    return COMPLIANT


def secrets_not_in_env(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r) if r.type != ECS_TASK else ecs_containers(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        # Kubernetes: env[].value; ECS: environment[].value (the secrets[] list holds references instead).
        for env in [*maps(c.get("env")), *maps(c.get("environment"))]:
            var = text(env.get("name")) or "?"
            value = env.get("value")
            if value is None:
                continue
            if value == "[secret]" or SECRET_NAME.search(var):
                fix = ("secrets[].valueFrom (Secrets Manager or SSM)" if r.type == ECS_TASK
                       else "valueFrom.secretKeyRef")
                out.append(f"container {name} env {var} holds a literal secret; use {fix}")
    return fail_all(out)


def _spread(spec: Mapping[str, object]) -> bool:
    if maps(spec.get("topologySpreadConstraints")):
        return True
    return bool(get(spec, "affinity.podAntiAffinity"))


def _hpa_floor(w: Resource, resources: Sequence[Resource]) -> int | None:
    for r in resources:
        ref = mapping(get(r.props, "spec.scaleTargetRef"))
        if r.type in k8s.HPA_TYPES and ref.get("name") == k8s.name_of(w) \
                and ref.get("kind") == k8s.kind(w.type) and k8s.namespace_of(r) == k8s.namespace_of(w):
            return integer(get(r.props, "spec.minReplicas")) or 1
    return None


def workload_ha(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    if not s.prod:
        return []
    pdbs = [r for r in resources if r.type in k8s.PDB_TYPES]
    out = []
    for w in resources:
        if w.type not in (k8s.DEPLOYMENT, k8s.STATEFULSET):
            continue
        declared = k8s.replicas(w.props)
        floor = _hpa_floor(w, resources)
        count = floor if floor is not None else (1 if declared is None else declared)
        if declared == 0 and floor is None:
            continue  # a deliberately idle track (the inactive blue/green color)
        problems = []
        if count < 2:
            problems.append(f"replicas must be >= 2 in prod, but {count} was given")
        pod_labels = k8s.template_labels(w.type, w.props)
        if not any(k8s.namespace_of(p) == k8s.namespace_of(w) and k8s.selects(k8s.match_labels(p.props), pod_labels)
                   for p in pdbs):
            problems.append("no PodDisruptionBudget selects its pods")
        if not _spread(k8s.pod_spec(w.type, w.props) or {}):
            problems.append("the pod spec needs topologySpreadConstraints or podAntiAffinity across zones")
        out.append(StackOutcome(w.urn, fail_all(problems)))
    return out
