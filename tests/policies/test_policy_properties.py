"""Property tests: rules agree with the component validation and hold their invariants for any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from components.spec import NodePoolSpec, node_pool_violations
from policies import fixtures as b
from policies.model import State, TierName
from policies.rules.autoscaling.nodepool_autoscaling_bounds import nodepool_autoscaling_bounds
from policies.rules.delivery.canary_weights_valid import canary_weights_valid

sizes = st.integers(min_value=-1, max_value=12)


@settings(max_examples=150, deadline=None)
@given(low=sizes, desired=sizes, high=sizes, prod=st.booleans())
def test_pool_bounds_rule_agrees_with_the_spec_validation(low: int, desired: int, high: int, prod: bool) -> None:
    pool = NodePoolSpec.model_construct(name="p", min_size=low, desired_size=desired, max_size=high)
    spec_ok = not node_pool_violations(pool)
    props = b.nodegroup(scalingConfig={"minSize": float(low), "desiredSize": float(desired), "maxSize": float(high)})
    tier = TierName.PROD if prod else TierName.DEV
    state = nodepool_autoscaling_bounds(b.res("aws:eks/nodeGroup:NodeGroup", props), b.settings(tier)).state
    # The rule is the spec's bounds plus "max > min" in prod.
    assert (state is State.COMPLIANT) == (spec_ok and (not prod or high > low))


@settings(max_examples=100, deadline=None)
@given(canary=st.integers(min_value=-50, max_value=150), total=st.integers(min_value=0, max_value=200))
def test_route_weights_are_valid_only_within_0_100_and_summing_to_100(canary: int, total: int) -> None:
    stable = total - canary
    route = b.res("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", b.httproute(stable, canary))
    state = canary_weights_valid(route, b.settings()).state
    valid = 0 <= canary <= 100 and 0 <= stable <= 100 and total == 100
    assert (state is State.COMPLIANT) == valid


@settings(max_examples=60, deadline=None)
@given(deployed=st.sets(st.sampled_from(["blue", "green"]), min_size=1),
       selected=st.one_of(st.none(), st.sampled_from(["blue", "green"])))
def test_a_service_fails_exactly_when_it_selects_both_colors(deployed: set[str], selected: str | None) -> None:
    from policies.rules.delivery.service_selects_one_color import service_selects_one_color

    resources = [b.res("kubernetes:apps/v1:Deployment", b.deployment(f"web-{c}", b.app_labels(color=c)),
                       name=f"web-{c}") for c in sorted(deployed)]
    selector = b.app_labels(**({"color": selected} if selected else {}))
    svc = b.res("kubernetes:core/v1:Service", b.service(selector=selector), name="web")
    states = [o.outcome.state for o in service_selects_one_color([*resources, svc], b.settings()) if o.urn == svc.urn]
    matches = deployed if selected is None else deployed & {selected}
    if not matches:
        assert states == []  # selects nothing here: not applicable
    else:
        assert states == [State.NON_COMPLIANT if len(matches) == 2 else State.COMPLIANT]
