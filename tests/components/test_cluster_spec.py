"""Cluster spec validation: node-pool bounds and CIDR properties (hypothesis), conflicts, tier defaults."""

from __future__ import annotations

import ipaddress
import re

import pulumi
import pytest
from clusters_helpers import make_cluster_spec, make_pool
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from components.cluster_support import (
    aws_subnet_layout,
    azure_node_subnet,
    cluster_violations,
    gcp_labels,
    gke_ranges,
    nat_per_zone,
    system_pool_index,
    tag_violations,
    zone_count,
)
from components.spec import (
    NETWORK_PREFIX_RANGE,
    EncryptionSpec,
    EndpointSpec,
    LoggingSpec,
    NetworkSpec,
    NodePoolSpec,
    Tier,
    check_network_cidr,
)
from components.validation import check_cidr
from infra.render import render_callable

sizes = st.integers(min_value=-3, max_value=40)


def _first_error(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


@settings(max_examples=300, deadline=None)
@given(low=sizes, desired=sizes, high=sizes)
def test_node_pool_accepts_exactly_ordered_positive_bounds(low: int, desired: int, high: int) -> None:
    valid = 1 <= low <= desired <= high
    try:
        pool = NodePoolSpec(name="pool", min_size=low, desired_size=desired, max_size=high)
    except ValidationError as exc:
        assert not valid, f"valid bounds refused: {exc}"
        text = _first_error(exc)
        # One template, naming the field that broke and what it must be.
        assert text.split(" must be ", 1)[0] in {"minSize", "maxSize", "desiredSize"}
        assert " but " in text and text.endswith(" was given")
        return
    assert valid, f"invalid bounds accepted: {low}, {desired}, {high}"
    assert 1 <= pool.min_size <= pool.desired_size <= pool.max_size


@pytest.mark.parametrize(
    ("low", "desired", "high", "message"),
    [
        (0, 1, 2, "minSize must be >= 1, but 0 was given"),
        (3, 2, 5, "minSize must be <= desiredSize (2), but 3 was given"),
        (1, 6, 5, "desiredSize must be <= maxSize (5), but 6 was given"),
        (1, 1, 0, "maxSize must be >= 1, but 0 was given"),
    ],
)
def test_node_pool_messages_name_the_field_and_the_fix(low: int, desired: int, high: int, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NodePoolSpec(name="pool", min_size=low, desired_size=desired, max_size=high)
    assert _first_error(caught.value) == message


octets = st.integers(min_value=0, max_value=255)
prefixes = st.integers(min_value=0, max_value=40)


@st.composite
def cidr_texts(draw: st.DrawFn) -> str:
    """Dotted quads with any prefix, including host bits set and out-of-range prefixes."""
    quad = ".".join(str(draw(octets)) for _ in range(4))
    return f"{quad}/{draw(prefixes)}"


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(cidr_texts(), st.text(max_size=20)))
def test_cidr_check_agrees_with_strict_network_parsing(text: str) -> None:
    violations = check_cidr("publicAccessCidrs[0]", text)
    assert (violations == []) == _is_network(text)
    if violations:
        assert str(violations[0]).startswith("publicAccessCidrs[0] must be a valid CIDR block")


@settings(max_examples=200, deadline=None)
@given(text=cidr_texts())
def test_network_cidr_is_an_ipv4_block_in_the_supported_prefix_range(text: str) -> None:
    low, high = NETWORK_PREFIX_RANGE
    ok = _is_network(text) and low <= ipaddress.ip_network(text).prefixlen <= high
    assert (check_network_cidr("cidr", text) == []) == ok
    if ok:
        assert NetworkSpec(cidr=text).cidr == text
    else:
        with pytest.raises(ValidationError, match="cidr must be"):
            NetworkSpec(cidr=text)


networks = st.builds(
    lambda a, b, prefix: str(ipaddress.ip_network(f"10.{a}.{b}.0/{prefix}", strict=False)),
    st.integers(0, 255), st.integers(0, 255), st.integers(16, 22),
)


@settings(max_examples=100, deadline=None)
@given(cidr=networks, zones=st.integers(min_value=1, max_value=6))
def test_aws_subnets_are_disjoint_and_inside_the_block(cidr: str, zones: int) -> None:
    layout = aws_subnet_layout(cidr, zones)
    assert len(layout.private) == len(layout.public) == zones
    block = ipaddress.IPv4Network(cidr)
    subnets = [ipaddress.IPv4Network(s) for s in (*layout.private, *layout.public)]
    assert all(s.subnet_of(block) for s in subnets)
    assert all(not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])
    assert all(s.prefixlen <= 28 for s in subnets)  # AWS's smallest subnet


@settings(max_examples=100, deadline=None)
@given(cidr=networks)
def test_gke_and_aks_ranges_are_disjoint_and_inside_the_block(cidr: str) -> None:
    block = ipaddress.IPv4Network(cidr)
    ranges = gke_ranges(cidr)
    parts = [ipaddress.IPv4Network(r) for r in (ranges.nodes, ranges.services, ranges.pods)]
    assert all(p.subnet_of(block) for p in parts)
    assert all(not a.overlaps(b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert ipaddress.IPv4Network(azure_node_subnet(cidr)).subnet_of(block)


def test_public_internet_needs_an_explicit_acknowledgement() -> None:
    with pytest.raises(ValidationError, match=re.escape("publicAccessCidrs must be free of 0.0.0.0/0 unless")):
        EndpointSpec(public_access=True, public_access_cidrs=["0.0.0.0/0"])
    opened = EndpointSpec(public_access=True, public_access_cidrs=["0.0.0.0/0"], acknowledge_public_internet=True)
    assert opened.public_access_cidrs == ["0.0.0.0/0"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"public_access": True}, "publicAccessCidrs must be a non-empty list when publicAccess is true"),
        ({"public_access_cidrs": ["10.0.0.0/8"]}, "publicAccessCidrs must be empty when publicAccess is false"),
        ({"private_access": False}, "privateAccess must be true when publicAccess is false"),
        ({"public_access": True, "public_access_cidrs": ["10.0.0.1/8"]}, "publicAccessCidrs[0] must be a valid"),
    ],
)
def test_endpoint_conflicts_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EndpointSpec.model_validate(fields)
    assert _first_error(caught.value).startswith(message)


def test_an_existing_key_conflicts_with_creating_one() -> None:
    with pytest.raises(ValidationError, match="existingKeyId must be unset when createKey is true"):
        EncryptionSpec(existing_key_id="arn:aws:kms:us-east-1:123456789012:key/abc")
    with pytest.raises(ValidationError, match="existingKeyId must be set when createKey is false"):
        EncryptionSpec(create_key=False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"zones": ["us-east-1a"], "zone_count": 2}, "zoneCount must be equal to the number of zones (1)"),
        ({"zones": ["us-east-1a", "us-east-1a"]}, "zones must be free of duplicates"),
        ({"existing_vpc_id": "vpc-1", "existing_private_subnet_ids": ["s"], "nat_per_zone": True},
         "natPerZone must be unset when existingVpcId is set"),
        ({"existing_private_subnet_ids": ["s"]}, "existingVpcId must be set when subnet ids are supplied"),
    ],
)
def test_network_conflicts_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NetworkSpec.model_validate(fields)
    assert _first_error(caught.value).startswith(message)


def test_log_types_must_be_known_and_unique() -> None:
    with pytest.raises(ValidationError, match=r"types\[1\] must be one of api, audit"):
        LoggingSpec(types=["api", "kube-apiserver"])
    with pytest.raises(ValidationError, match="types must be free of duplicates"):
        LoggingSpec(types=["api", "api"])


def test_version_must_be_on_the_configurable_supported_list() -> None:
    with pytest.raises(ValidationError, match=re.escape("version must be one of 1.31, 1.32, 1.33, 1.34, but '1.29'")):
        make_cluster_spec(version="1.29")
    assert make_cluster_spec(version="1.29", supported_versions=["1.29", "1.30"]).version == "1.29"


@pytest.mark.parametrize(
    ("tier", "zones", "nat"),
    [(Tier.DEV, 2, False), (Tier.STAGING, 2, False), (Tier.PROD, 3, True)],
)
def test_tier_defaults_for_zones_and_nat(tier: Tier, zones: int, nat: bool) -> None:
    network = NetworkSpec()
    assert zone_count(network, tier) == zones
    assert nat_per_zone(network, tier) is nat
    assert zone_count(NetworkSpec(zone_count=4), tier) == 4
    assert nat_per_zone(NetworkSpec(nat_per_zone=not nat), tier) is (not nat)


def test_region_and_zone_shape_are_checked_per_cloud() -> None:
    spec = make_cluster_spec(network={"zones": ["eu-west-1a", "eu-west-1b"]})
    assert cluster_violations(spec, cloud="aws", region="eu-west-1") == []
    bad = cluster_violations(spec, cloud="aws", region="us-east-1")
    assert [v.field for v in bad] == ["network.zones[0]", "network.zones[1]"]
    assert str(bad[0]) == "network.zones[0] must be a zone of us-east-1 such as us-east-1a, but 'eu-west-1a' was given"
    [region] = cluster_violations(make_cluster_spec(), cloud="gcp", region="europe_west1")
    assert region.field == "region"
    [azure] = cluster_violations(make_cluster_spec(), cloud="azure", region="West Europe")
    assert azure.field == "region"


def test_unknown_outputs_are_skipped() -> None:
    seen: dict[str, object] = {}

    def program() -> None:
        # Outputs exist only inside a Pulumi program; judge them where the components would.
        unknown = pulumi.Output.from_input("not a region")
        seen["cidr"] = check_cidr("cidr", unknown)
        seen["region"] = cluster_violations(make_cluster_spec(), cloud="aws", region=unknown)

    render_callable(program)
    assert seen == {"cidr": [], "region": []}
    assert cluster_violations(make_cluster_spec(), cloud="aws", region="not a region") != []


def test_system_pool_is_the_first_system_role_else_the_first_pool() -> None:
    assert system_pool_index([make_pool("a"), make_pool("b", role="system")]) == 1
    assert system_pool_index([make_pool("a"), make_pool("b")]) == 0


def test_gcp_labels_are_sanitised_deterministically() -> None:
    labels = gcp_labels({"Cost Center": "CC/1001", "9lives": "x"})
    assert labels == {"cost_center": "cc_1001", "k9lives": "x"}
    assert gcp_labels({"Cost Center": "CC/1001", "9lives": "x"}) == labels


@pytest.mark.parametrize(
    ("tags", "cloud", "field"),
    [
        ({"aws:createdBy": "me"}, "aws", "tags.aws:createdBy"),
        ({"k": "v" * 257}, "aws", "tags.k"),
        ({f"t{i}": "v" for i in range(49)}, "aws", "tags"),
        ({"team/owner": "x"}, "azure", "tags.team/owner"),
    ],
)
def test_tags_each_cloud_would_refuse_are_caught_early(tags: dict[str, str], cloud: str, field: str) -> None:
    [violation] = tag_violations(tags, cloud=cloud)
    assert violation.field == field
    assert tag_violations({"owner": "platform-team", "cost-center": "cc-1001"}, cloud=cloud) == []
