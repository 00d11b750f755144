"""opaque-component: one rule of the pack (see RULE below).

Components whose children another language's provider registers are flagged, not passed silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.model import COMPLIANT, Resource, Settings, StackOutcome, fail
from policies.rule import A, Fixture, stack_rule


def opaque_component(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    """A component with no children was built by another language's provider (pulumi_eks.Cluster): the
    render never sees inside it, so say so instead of passing it silently."""
    parents = {r.parent for r in resources if r.parent}
    out: list[StackOutcome] = []
    for r in resources:
        if r.custom or r.type.startswith("pulumi:"):
            continue
        if r.urn in parents:
            out.append(StackOutcome(r.urn, COMPLIANT))
            continue
        out.append(StackOutcome(r.urn, fail(f"opaque component: its children were not analysed ({r.type} "
                                            "registers them in another language's provider); check them with "
                                            "`pulumi preview --policy-pack policies`")))
    return out


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_EKS, bad, ok

    r = b.res
    return [
        ok("with-children", r("gantry:aws:EksCluster", {}, name="c", custom=False),
           r(T_EKS, b.eks_cluster(), parent=b.urn("gantry:aws:EksCluster", "c"))),
        bad("multi-language", r("eks:index:Cluster", {}, name="eks", custom=False)),
    ]


RULE = stack_rule(
    "opaque-component", opaque_component,
    category="stateful",
    level=A,
    description="Components whose children another language's provider registers are flagged, not passed silently.",
    remediation="Check the stack with `pulumi preview --policy-pack policies`, or build the resources in Python.",
    fixtures=fixtures,
)
