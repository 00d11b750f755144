"""Pure helpers the cluster components share: tier defaults, subnet layouts, tags, kubeconfigs, validation.

Called by components/aws, components/gcp, components/azure and components/cluster.py. It imports no
provider SDK, so tests and the config loader can use it cheaply.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.spec import ClusterSpec, NetworkSpec, NodePoolSpec, Tier
from components.validation import Violation, check_region, check_zone, is_unknown, raise_first

DEFAULT_INSTANCE_TYPES: dict[str, str] = {
    "aws": "m6i.large",
    "gcp": "e2-standard-4",
    "azure": "Standard_D4s_v5",
}
"""General-purpose machine per cloud when a pool leaves ``instanceType`` unset."""

CLOUDWATCH_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
"""The only retention periods CloudWatch Logs accepts."""

AWS_KMS_ROTATION_DAYS: tuple[int, int] = (90, 2560)
GCP_MAX_ROTATION_DAYS = 90
AZURE_LOG_RETENTION_DAYS: tuple[int, int] = (30, 730)
AWS_NETWORK_MIN_PREFIX = 16
"""A VPC's primary block is /16 at most."""

_AWS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+$")
_GCP_KEY_ID = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
_AZURE_DES_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/diskEncryptionSets/[^/]+$",
    re.IGNORECASE,
)
_AZURE_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")


# --------------------------------------------------------------------------- tier defaults


def zone_count(network: NetworkSpec, tier: Tier) -> int:
    """Explicit zones win; then ``zoneCount``; else 2 zones, or 3 in prod."""
    if network.zones:
        return len(network.zones)
    if network.zone_count is not None:
        return network.zone_count
    return 3 if tier is Tier.PROD else 2


def nat_per_zone(network: NetworkSpec, tier: Tier) -> bool:
    """One NAT gateway per zone in prod (a zone outage keeps egress), a single shared one elsewhere."""
    if network.nat_per_zone is not None:
        return network.nat_per_zone
    return tier is Tier.PROD


def instance_type(pool: NodePoolSpec, cloud: str) -> str:
    return pool.instance_type or DEFAULT_INSTANCE_TYPES[cloud]


def system_pool_index(pools: Sequence[NodePoolSpec]) -> int:
    """The pool that carries cluster add-ons: the first ``role: system`` pool, else the first pool."""
    for i, pool in enumerate(pools):
        if pool.role == "system":
            return i
    return 0


# --------------------------------------------------------------------------- address plans


@dataclass(frozen=True, slots=True)
class SubnetLayout:
    """Per-zone private and public subnets carved from one network block."""

    private: tuple[str, ...]
    public: tuple[str, ...]


def aws_subnet_layout(cidr: str, zones: int) -> SubnetLayout:
    """Private subnets are eighths of the block (nodes and pods need room); public ones are small.

    The block's first ``zones`` eighths are private; the last eighth is cut into eight pieces and the
    first ``zones`` of those are public (load balancers and NAT only). Deterministic for a given CIDR.
    """
    net = ipaddress.IPv4Network(cidr, strict=True)
    eighths = list(net.subnets(prefixlen_diff=3))
    public_pool = list(eighths[-1].subnets(prefixlen_diff=3))
    return SubnetLayout(
        private=tuple(str(s) for s in eighths[:zones]),
        public=tuple(str(s) for s in public_pool[:zones]),
    )


@dataclass(frozen=True, slots=True)
class GkeRanges:
    """Primary (nodes) and secondary (pods, services) ranges of one GKE subnetwork."""

    nodes: str
    services: str
    pods: str


def gke_ranges(cidr: str) -> GkeRanges:
    """Nodes and services take a sixteenth each; pods, the hungriest, take the upper half."""
    net = ipaddress.IPv4Network(cidr, strict=True)
    sixteenths = list(net.subnets(prefixlen_diff=4))
    halves = list(net.subnets(prefixlen_diff=1))
    return GkeRanges(nodes=str(sixteenths[0]), services=str(sixteenths[1]), pods=str(halves[1]))


def azure_node_subnet(cidr: str) -> str:
    """AKS overlay networking gives pods their own space, so nodes need only the lower half."""
    net = ipaddress.IPv4Network(cidr, strict=True)
    return str(next(net.subnets(prefixlen_diff=1)))


# --------------------------------------------------------------------------- tags and names


def resource_tags(tags: Mapping[str, str], cluster: str) -> dict[str, str]:
    """Stack tags plus the two Gantry always sets, so every resource can be traced to its cluster."""
    return {**dict(tags), "gantry-cluster": cluster, "managed-by": "gantry"}


def gcp_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """GCP labels allow lowercase letters, digits, ``_`` and ``-`` (63 chars); map tags onto that."""

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:63]

    out: dict[str, str] = {}
    for key, value in tags.items():
        k = clean(key)
        if not k or not k[0].isalpha():
            k = f"k{k}"[:63]
        out[k] = clean(value)
    return out


def aws_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# --------------------------------------------------------------------------- kubeconfig


def exec_kubeconfig(
    *,
    cluster: str,
    server: str,
    ca_data: str,
    command: str,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    install_hint: str,
) -> str:
    """A kubeconfig whose user runs a credential plugin, so no long-lived token is ever stored."""
    exec_block: dict[str, object] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "args": list(args),
        "interactiveMode": "Never",
        "provideClusterInfo": False,
        "installHint": install_hint,
    }
    if env:
        exec_block["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
        "users": [{"name": cluster, "user": {"exec": exec_block}}],
    }
    return json.dumps(doc, indent=2, sort_keys=True)


def https(host: str) -> str:
    return host if host.startswith("https://") else f"https://{host}"


# --------------------------------------------------------------------------- validation


def cluster_violations(spec: ClusterSpec, *, cloud: str, region: object) -> list[Violation]:
    """What a spec cannot do on this cloud and region; field paths are relative to ``cluster``.

    The spec already checked itself (bounds, CIDR syntax, version list, key conflicts). This adds
    the checks that need the cloud: region and zone shape and each provider's own limits. Regions
    that are unknown ``Output``s are skipped.
    """
    out = check_region("region", cloud, region)
    if not out and not is_unknown(region):
        for i, zone in enumerate(spec.network.zones):
            out += check_zone(f"network.zones[{i}]", cloud, str(region), zone)
    if cloud == "aws":
        out += _aws_violations(spec)
    elif cloud == "gcp":
        out += _gcp_violations(spec)
    elif cloud == "azure":
        out += _azure_violations(spec)
    return out


def validated_tags(spec: ClusterSpec, tags: Mapping[str, str], *, cloud: str, region: object) -> dict[str, str]:
    """Merge the stack's tags under the cluster's own, then check spec and tags for this cloud.

    Every cluster component calls this first, so a bad spec raises before anything is registered
    and no half-built component is left behind.
    """
    merged = {**tags, **spec.tags}  # the cluster's own tags win over the stack's
    raise_first([*cluster_violations(spec, cloud=cloud, region=region), *tag_violations(merged, cloud=cloud)])
    return merged


_AZURE_TAG_FORBIDDEN = re.compile(r"[<>%&\\?/]")


def tag_violations(tags: Mapping[str, str], *, cloud: str) -> list[Violation]:
    """Tags every cloud would refuse at apply time, caught at construction instead."""
    out: list[Violation] = []
    for key, value in tags.items():
        field = f"tags.{key}"
        if cloud == "aws":
            if key.lower().startswith("aws:"):
                out.append(Violation(field, "a key without the reserved 'aws:' prefix", key))
            if len(key) > 128 or len(value) > 256:
                out.append(Violation(field, "a key of at most 128 and a value of at most 256 characters", value))
        elif cloud == "azure" and (_AZURE_TAG_FORBIDDEN.search(key) or len(key) > 512 or len(value) > 256):
            out.append(Violation(field, "a name of at most 512 characters without < > % & \\ ? / and a "
                                 "value of at most 256", key))
    if cloud == "aws" and len(tags) + 2 > 50:
        out.append(Violation("tags", "at most 48 tags (AWS allows 50; Gantry adds 2)", len(tags)))
    return out


def _aws_violations(spec: ClusterSpec) -> list[Violation]:
    out: list[Violation] = []
    net = ipaddress.ip_network(spec.network.cidr)
    if spec.network.existing_vpc_id is None and net.prefixlen < AWS_NETWORK_MIN_PREFIX:
        out.append(Violation("network.cidr", f"an IPv4 block from /{AWS_NETWORK_MIN_PREFIX} to /22 on AWS",
                             spec.network.cidr))
    low, high = AWS_KMS_ROTATION_DAYS
    if spec.encryption.create_key and not low <= spec.encryption.rotation_days <= high:
        out.append(Violation("encryption.rotationDays", f"from {low} to {high} on AWS KMS",
                             spec.encryption.rotation_days))
    key = spec.encryption.existing_key_id
    if key is not None and not _AWS_KEY_ARN.match(key):
        out.append(Violation("encryption.existingKeyId", "a KMS key ARN such as "
                             "arn:aws:kms:us-east-1:123456789012:key/<id>", key))
    if spec.logging.enabled and spec.logging.retention_days not in CLOUDWATCH_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in CLOUDWATCH_RETENTION_DAYS)
        out.append(Violation("logging.retentionDays", f"a CloudWatch retention period ({allowed})",
                             spec.logging.retention_days))
    if spec.network.existing_vpc_id is not None and len(spec.network.existing_private_subnet_ids) < 2:
        out.append(Violation("network.existingPrivateSubnetIds", "at least 2 subnets in different zones (EKS)",
                             spec.network.existing_private_subnet_ids))
    if spec.network.existing_vpc_id is None and zone_count(spec.network, Tier.DEV) < 2:
        out.append(Violation("network.zoneCount", "at least 2 (EKS needs subnets in two zones)",
                             spec.network.zone_count))
    return out


def _gcp_violations(spec: ClusterSpec) -> list[Violation]:
    out: list[Violation] = []
    if spec.encryption.create_key and spec.encryption.rotation_days > GCP_MAX_ROTATION_DAYS:
        out.append(Violation("encryption.rotationDays", f"<= {GCP_MAX_ROTATION_DAYS} on GKE",
                             spec.encryption.rotation_days))
    key = spec.encryption.existing_key_id
    if key is not None and not _GCP_KEY_ID.match(key):
        out.append(Violation("encryption.existingKeyId", "a Cloud KMS key id such as "
                             "projects/<p>/locations/<region>/keyRings/<ring>/cryptoKeys/<key>", key))
    if spec.network.existing_vpc_id is not None and len(spec.network.existing_private_subnet_ids) != 1:
        out.append(Violation("network.existingPrivateSubnetIds", "exactly one subnetwork on GKE",
                             spec.network.existing_private_subnet_ids))
    return out


def _azure_violations(spec: ClusterSpec) -> list[Violation]:
    out: list[Violation] = []
    for i, pool in enumerate(spec.node_pools):
        if not _AZURE_POOL_NAME.match(pool.name):
            out.append(Violation(f"nodePools[{i}].name", "1-12 lowercase letters and digits on AKS", pool.name))
    low, high = AZURE_LOG_RETENTION_DAYS
    if spec.logging.enabled and not low <= spec.logging.retention_days <= high:
        out.append(Violation("logging.retentionDays", f"from {low} to {high} on Azure Log Analytics",
                             spec.logging.retention_days))
    if spec.network.zone_count is not None and spec.network.zone_count > 3:
        out.append(Violation("network.zoneCount", "from 1 to 3 on Azure", spec.network.zone_count))
    key = spec.encryption.existing_key_id
    if key is not None and not _AZURE_DES_ID.match(key):
        out.append(Violation("encryption.existingKeyId", "a disk encryption set id such as /subscriptions/<s>/"
                             "resourceGroups/<rg>/providers/Microsoft.Compute/diskEncryptionSets/<name>", key))
    if spec.network.existing_vpc_id is not None and len(spec.network.existing_private_subnet_ids) != 1:
        out.append(Violation("network.existingPrivateSubnetIds", "exactly one node subnet on AKS",
                             spec.network.existing_private_subnet_ids))
    return out


# --------------------------------------------------------------------------- output values


def dig(value: object, *path: str | int) -> object:
    """Walk a resolved output value (provider output types or plain dicts) without raising.

    Provider output types expose snake_case properties; values from mocks or JSON are plain dicts
    keyed in camelCase. Missing steps give ``None`` so a partly-known value never crashes a render.
    """
    for step in path:
        if value is None:
            return None
        if isinstance(step, int):
            if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > step:
                value = value[step]
                continue
            return None
        if type(value) is not dict:
            # Output types warn when read by key; their property getters are the supported way.
            value = getattr(value, step, None)
            continue
        if isinstance(value, Mapping):
            camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), step)
            value = value.get(step, value.get(camel))
            continue
        return None
    return value


def text(value: object) -> str:
    """A resolved scalar as text; ``None`` (not yet known) becomes the empty string."""
    return "" if value is None else str(value)
