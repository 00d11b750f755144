"""pdb-selects-a-workload: every PodDisruptionBudget selects the pods of a workload in its namespace.

A PDB whose selector matches nothing (a label typo, a renamed app, the wrong namespace) protects nothing, yet
reads as if the workload were covered: a node drain may then evict every replica at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies import k8s
from policies.model import COMPLIANT, Resource, Settings, StackOutcome, fail
from policies.props import get, mapping, maps
from policies.rule import A, Fixture, stack_rule

SELECTED = k8s.SCALABLE | {k8s.POD}
"""What a PDB's selector is meant to match: pods of Deployments, StatefulSets, ReplicaSets, or bare pods."""


def _pod_labels(r: Resource) -> dict[str, str]:
    return k8s.labels(r.props) if r.type == k8s.POD else k8s.template_labels(r.type, r.props)


def pdb_selects_a_workload(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    out = []
    for pdb in resources:
        if pdb.type not in k8s.PDB_TYPES:
            continue
        if maps(get(pdb.props, "spec.selector.matchExpressions")):
            continue  # set-based selectors are not judged here
        ns = k8s.namespace_of(pdb)
        selector = k8s.match_labels(pdb.props)
        candidates = [w for w in resources if w.type in SELECTED and k8s.namespace_of(w) == ns]
        # In policy/v1 an empty selector selects every pod of the namespace.
        empty = not selector and get(pdb.props, "spec.selector") is not None
        if any(empty or k8s.selects(selector, _pod_labels(w)) for w in candidates):
            out.append(StackOutcome(pdb.urn, COMPLIANT))
            continue
        shown = ", ".join(f"{k}={v}" for k, v in sorted(mapping(selector).items())) or "(none)"
        out.append(StackOutcome(pdb.urn, fail(
            f"spec.selector.matchLabels ({shown}) selects no Deployment, StatefulSet, ReplicaSet or Pod in "
            f"namespace {ns!r}, so this PodDisruptionBudget protects nothing")))
    return out


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_PDB, bad, ok

    web = b.res(T_DEP, b.deployment(), name="web")
    return [
        ok("selects-web", web, b.res(T_PDB, b.pdb(), name="p"), subject=1),
        bad("label-typo", web, b.res(T_PDB, b.pdb(selector={"app.kubernetes.io/name": "wbe"}), name="p"), subject=1),
        bad("other-namespace", web, b.res(T_PDB, b.merge(b.pdb(), {"metadata": {"namespace": "api"}}), name="p"),
            subject=1),
        bad("no-workload-at-all", b.res(T_PDB, b.pdb(), name="p")),
    ]


RULE = stack_rule(
    "pdb-selects-a-workload", pdb_selects_a_workload,
    category="autoscaling",
    level=A,
    description="Every PodDisruptionBudget selects the pods of a workload in its own namespace.",
    remediation="Make spec.selector.matchLabels a subset of the workload's pod template labels, in the same "
                "namespace (Gantry's components derive both from one label set).",
    fixtures=fixtures,
)
