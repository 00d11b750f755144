"""Cloud-agnostic value objects (props) that components are built from; config.py loads them from stacks.

Every field has a documented default, and the default is the secure choice. Field names are
snake_case in Python and camelCase in stack YAML (``nodePools[0].minSize``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components.validation import Violation, check_cidr, check_image, raise_first

DEFAULT_SUPPORTED_VERSIONS: tuple[str, ...] = ("1.31", "1.32", "1.33", "1.34")
"""Kubernetes minor versions Gantry accepts by default; a stack may override the list."""

EKS_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")


class Spec(BaseModel):
    """Base for all props: frozen, keyword-only, camelCase aliases, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        arbitrary_types_allowed=True,
        validate_default=True,
    )

    def with_overrides(self, **changes: object) -> Self:
        """A copy with ``changes`` (by field name) applied and the whole model validated again.

        ``model_copy(update=...)`` validates nothing, so a CLI flag applied with it escapes every rule the
        stack file obeys; here a bad override raises pydantic's ``ValidationError``, exactly as the same
        value in the stack file would. Fields left unset stay unset (their defaults are derived again).
        """
        given = {name: getattr(self, name) for name in self.model_fields_set}
        return self.model_validate({**given, **changes}, by_name=True)


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"
    LOCAL = "local"
    """No cloud resources: the local sandbox (HAProxy and Prometheus on 127.0.0.1)."""


class Tier(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Strategy(StrEnum):
    CANARY = "canary"
    BLUEGREEN = "bluegreen"


class Color(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        return Color.GREEN if self is Color.BLUE else Color.BLUE


class Delivery(StrEnum):
    """How a change of a service's ``image`` in the stack file reaches users on a plain ``pulumi up``."""

    PROGRESSIVE = "progressive"
    """Staged with no traffic (a canary at 0%, or the inactive color) until ``gantry rollout start``."""
    DIRECT = "direct"
    """Served at once, at 100%, with no analysis (for dev stacks)."""


class RouterKind(StrEnum):
    GATEWAY_API = "gateway-api"
    ISTIO = "istio"
    NGINX = "nginx"
    SMI = "smi"


# --------------------------------------------------------------------------- clusters


class NodePoolSpec(Spec):
    """An autoscaling node pool."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Pool name. Required.")
    role: Literal["system", "workload"] = Field(
        default="workload", description="System pools carry a CriticalAddonsOnly taint. Default: workload."
    )
    instance_type: str | None = Field(
        default=None, description="Machine type; None picks the cloud's general-purpose default. Default: None."
    )
    min_size: int = Field(default=2, description="Autoscaling lower bound, >= 1. Default: 2.")
    desired_size: int = Field(default=2, description="Initial size, min <= desired <= max. Default: 2.")
    max_size: int = Field(default=5, description="Autoscaling upper bound. Default: 5.")
    disk_size_gb: int = Field(default=50, ge=20, le=2000, description="Root volume size. Default: 50.")
    autoscaler_owns_desired: bool = Field(
        default=True,
        description="The cluster autoscaler owns desiredSize, so Pulumi ignores drift on it. Default: true.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Node labels. Default: none.")

    @model_validator(mode="after")
    def _bounds(self) -> NodePoolSpec:
        raise_first(node_pool_violations(self))
        return self


def node_pool_violations(pool: NodePoolSpec, path: str = "") -> list[Violation]:
    """1 <= min <= desired <= max and max >= 1, reported against camelCase field paths."""
    p = f"{path}." if path else ""
    out: list[Violation] = []
    if pool.min_size < 1:
        out.append(Violation(f"{p}minSize", ">= 1", pool.min_size))
    if pool.max_size < 1:
        out.append(Violation(f"{p}maxSize", ">= 1", pool.max_size))
    if pool.min_size > pool.desired_size:
        out.append(Violation(f"{p}minSize", f"<= desiredSize ({pool.desired_size})", pool.min_size))
    if pool.desired_size > pool.max_size:
        out.append(Violation(f"{p}desiredSize", f"<= maxSize ({pool.max_size})", pool.desired_size))
    return out


class EndpointSpec(Spec):
    """Who can reach the Kubernetes API server."""

    private_access: bool = Field(default=True, description="Private endpoint inside the VPC. Default: true.")
    public_access: bool = Field(default=False, description="Public endpoint. Default: false.")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to the public endpoint; required when publicAccess is on. Default: none.",
    )
    acknowledge_public_internet: bool = Field(
        default=False,
        description="Explicitly allow 0.0.0.0/0 on the public endpoint. Default: false (refused).",
    )

    @model_validator(mode="after")
    def _check(self) -> EndpointSpec:
        raise_first(endpoint_violations(self))
        return self


def endpoint_violations(ep: EndpointSpec, path: str = "") -> list[Violation]:
    """Fields are relative to the endpoint block; ``path`` prefixes them (e.g. ``endpoint``)."""
    path = f"{path}." if path else ""
    out: list[Violation] = []
    for i, cidr in enumerate(ep.public_access_cidrs):
        out += check_cidr(f"{path}publicAccessCidrs[{i}]", cidr)
    if ep.public_access and not ep.public_access_cidrs:
        out.append(Violation(f"{path}publicAccessCidrs", "a non-empty list when publicAccess is true", []))
    if not ep.public_access and not ep.private_access:
        out.append(Violation(f"{path}privateAccess", "true when publicAccess is false", False))
    if ep.public_access_cidrs and not ep.public_access:
        # A CIDR list with the endpoint off is a contradiction; refuse it rather than guess intent.
        out.append(Violation(f"{path}publicAccessCidrs", "empty when publicAccess is false",
                             ep.public_access_cidrs))
    opens = [c for c in ep.public_access_cidrs if c in ("0.0.0.0/0", "::/0")]
    if opens and not ep.acknowledge_public_internet:
        out.append(
            Violation(
                f"{path}publicAccessCidrs",
                "free of 0.0.0.0/0 unless acknowledgePublicInternet is true",
                ep.public_access_cidrs,
            )
        )
    return out


class EncryptionSpec(Spec):
    """Customer-managed encryption for secrets and node disks."""

    create_key: bool = Field(default=True, description="Create a customer-managed key. Default: true.")
    existing_key_id: str | None = Field(
        default=None,
        description=(
            "An existing key instead of creating one: a KMS key ARN (AWS), a CryptoKey id (GCP) or a disk "
            "encryption set id (Azure). Its policy must let the cluster, nodes and logs use it. Default: none."
        ),
    )
    rotation_days: int = Field(
        default=90, ge=1, le=365,
        description="Key rotation period; AWS KMS needs >= 90, GKE <= 90. Default: 90.",
    )
    deletion_window_days: int = Field(
        default=30, ge=7, le=30, description="Waiting period before a deleted key is destroyed. Default: 30."
    )

    @model_validator(mode="after")
    def _conflict(self) -> EncryptionSpec:
        if self.create_key and self.existing_key_id is not None:
            raise_first(
                [Violation("existingKeyId", "unset when createKey is true", self.existing_key_id)]
            )
        if not self.create_key and self.existing_key_id is None:
            raise_first([Violation("existingKeyId", "set when createKey is false", None)])
        return self


class LoggingSpec(Spec):
    """Control-plane logging."""

    enabled: bool = Field(default=True, description="Control-plane logging on. Default: true.")
    types: list[str] = Field(
        default_factory=lambda: list(EKS_LOG_TYPES),
        description="Log types (EKS names; mapped per cloud). Default: all five.",
    )
    retention_days: int = Field(
        default=90, ge=1, le=3653,
        description="Log retention; a CloudWatch period on AWS, 30..730 on Azure. Default: 90.",
    )

    @model_validator(mode="after")
    def _check(self) -> LoggingSpec:
        out: list[Violation] = []
        for i, kind in enumerate(self.types):
            if kind not in EKS_LOG_TYPES:
                out.append(Violation(f"types[{i}]", f"one of {', '.join(EKS_LOG_TYPES)}", kind))
        if len(set(self.types)) != len(self.types):
            out.append(Violation("types", "free of duplicates", self.types))
        if self.enabled and not self.types:
            out.append(Violation("types", "a non-empty list when enabled is true", self.types))
        raise_first(out)
        return self


NETWORK_PREFIX_RANGE: tuple[int, int] = (8, 22)
"""Network blocks Gantry can carve subnets from: /8 (huge) to /22 (the smallest with room per zone)."""


def check_network_cidr(field: str, value: object) -> list[Violation]:
    """A strict IPv4 CIDR whose prefix leaves room for per-zone subnets."""
    syntax = check_cidr(field, value)
    if syntax or not isinstance(value, str):
        return syntax
    net = ipaddress.ip_network(value, strict=True)
    low, high = NETWORK_PREFIX_RANGE
    if net.version != 4 or not low <= net.prefixlen <= high:
        return [Violation(field, f"an IPv4 block from /{low} to /{high}", value)]
    return []


class NetworkSpec(Spec):
    """The cluster network: created, or supplied."""

    cidr: str = Field(default="10.0.0.0/16", description="VPC / VNet CIDR. Default: 10.0.0.0/16.")
    zone_count: int | None = Field(
        default=None, ge=1, le=6, description="Zones to span; None means 2 (3 in prod). Default: None."
    )
    zones: list[str] = Field(default_factory=list, description="Explicit zones. Default: derived.")
    existing_vpc_id: str | None = Field(default=None, description="Use this VPC. Default: create one.")
    existing_private_subnet_ids: list[str] = Field(default_factory=list, description="With existingVpcId.")
    existing_public_subnet_ids: list[str] = Field(default_factory=list, description="With existingVpcId.")
    nat_per_zone: bool | None = Field(
        default=None, description="One NAT gateway per zone; None means per zone in prod only."
    )

    @model_validator(mode="after")
    def _check(self) -> NetworkSpec:
        out = check_network_cidr("cidr", self.cidr)
        if self.zone_count is not None and self.zones and len(self.zones) != self.zone_count:
            out.append(Violation("zoneCount", f"equal to the number of zones ({len(self.zones)})",
                                 self.zone_count))
        if len(set(self.zones)) != len(self.zones):
            out.append(Violation("zones", "free of duplicates", self.zones))
        if self.existing_vpc_id is not None and self.nat_per_zone is not None:
            # NAT belongs to the network; with a supplied network there is nothing to configure.
            out.append(Violation("natPerZone", "unset when existingVpcId is set", self.nat_per_zone))
        if self.existing_vpc_id is None and (self.existing_private_subnet_ids or self.existing_public_subnet_ids):
            out.append(Violation("existingVpcId", "set when subnet ids are supplied", None))
        if self.existing_vpc_id is not None and not self.existing_private_subnet_ids:
            out.append(
                Violation("existingPrivateSubnetIds", "non-empty when existingVpcId is set", [])
            )
        raise_first(out)
        return self


class ClusterSpec(Spec):
    """A managed Kubernetes cluster, cloud-agnostic; the factory picks EKS, GKE or AKS."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,38}$", description="Cluster name. Required.")
    version: str = Field(default="1.33", description="Kubernetes minor version. Default: 1.33.")
    supported_versions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SUPPORTED_VERSIONS),
        description="Versions this platform accepts. Default: Gantry's list.",
    )
    endpoint: EndpointSpec = Field(default_factory=EndpointSpec, description="Default: private only.")
    encryption: EncryptionSpec = Field(default_factory=EncryptionSpec, description="Default: created CMK.")
    logging: LoggingSpec = Field(default_factory=LoggingSpec, description="Default: all types, 90 days.")
    network: NetworkSpec = Field(default_factory=NetworkSpec, description="Default: created network.")
    node_pools: list[NodePoolSpec] = Field(
        default_factory=lambda: [NodePoolSpec(name="default")],
        min_length=1,
        description="Autoscaling pools. Default: one pool of 2..5.",
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(
        default="REGULAR", description="GKE release channel. Default: REGULAR."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags (labels on GCP) for the cluster's resources, over the stack's gantry:tags. Default: none.",
    )
    managed_prometheus: bool = Field(
        default=True,
        description="Collect metrics into the cloud's managed Prometheus (Amazon Managed Service for Prometheus, "
                    "Google Cloud Managed Service for Prometheus, Azure Monitor) and export its query endpoint "
                    "for rollout analysis. Default: true.",
    )

    @model_validator(mode="after")
    def _check(self) -> ClusterSpec:
        if self.version not in self.supported_versions:
            raise_first(
                [Violation("version", f"one of {', '.join(self.supported_versions)}", self.version)]
            )
        names = [p.name for p in self.node_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise_first([Violation("nodePools", "uniquely named", dupes)])
        return self


# --------------------------------------------------------------------------- services

Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G)?$")]

_QUANTITY_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
}


def quantity_value(quantity: str) -> Decimal:
    """The numeric value of a Kubernetes quantity (``500m`` -> 0.5, ``1Gi`` -> 1073741824)."""
    number = quantity.rstrip("mkMGKiT")
    return Decimal(number) * _QUANTITY_SUFFIX[quantity[len(number):]]



class ResourcesSpec(Spec):
    """Container requests and limits."""

    cpu_request: Quantity = Field(default="100m", description="Default: 100m.")
    memory_request: Quantity = Field(default="128Mi", description="Default: 128Mi.")
    cpu_limit: Quantity = Field(default="500m", description="Default: 500m.")
    memory_limit: Quantity = Field(default="256Mi", description="Default: 256Mi.")

    @model_validator(mode="after")
    def _limits(self) -> ResourcesSpec:
        raise_first(resources_violations(self))
        return self


def resources_violations(res: ResourcesSpec, path: str = "") -> list[Violation]:
    """A limit below its request is refused by the API server; say so before a deploy fails."""
    p = f"{path}." if path else ""
    out: list[Violation] = []
    for kind in ("cpu", "memory"):
        request: str = getattr(res, f"{kind}_request")
        limit: str = getattr(res, f"{kind}_limit")
        if quantity_value(limit) < quantity_value(request):
            out.append(Violation(f"{p}{kind}Limit", f">= {kind}Request ({request})", limit))
    return out


class ProbeSpec(Spec):
    """An HTTP probe."""

    path: str = Field(default="/healthz", pattern=r"^/", description="Default: /healthz.")
    port: int = Field(default=8080, ge=1, le=65535, description="Container port probed. Default: 8080.")
    period_seconds: int = Field(default=10, ge=1, description="Default: 10.")
    failure_threshold: int = Field(default=3, ge=1, description="Default: 3.")
    initial_delay_seconds: int = Field(default=0, ge=0, description="Default: 0.")


class HpaSpec(Spec):
    """An autoscaling/v2 HorizontalPodAutoscaler."""

    enabled: bool = Field(default=False, description="Default: false (fixed replicas).")
    min_replicas: int = Field(default=2, ge=1, description="Default: 2.")
    max_replicas: int = Field(default=10, ge=1, description="Default: 10.")
    cpu_utilization: int = Field(default=70, ge=1, le=100, description="Target CPU %. Default: 70.")
    memory_utilization: int = Field(default=80, ge=1, le=100, description="Target memory %. Default: 80.")

    @model_validator(mode="after")
    def _bounds(self) -> HpaSpec:
        if self.min_replicas > self.max_replicas:
            raise_first([Violation("minReplicas", f"<= maxReplicas ({self.max_replicas})", self.min_replicas)])
        return self


class ServiceSpec(Spec):
    """A service delivered by blue/green or canary; the rollout engine edits its config keys."""

    image: str = Field(description="Stable image, pinned by tag or digest. Required.")
    namespace: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="Explicit namespace, never 'default'. Required."
    )
    strategy: Strategy = Field(default=Strategy.CANARY, description="Default: canary.")
    delivery: Delivery = Field(
        default=Delivery.PROGRESSIVE,
        description="progressive: a changed image waits for `gantry rollout start` (staged at 0% or on the "
        "inactive color); direct: a plain `pulumi up` serves it at once (dev only). Default: progressive.",
    )
    replicas: int = Field(default=2, ge=1, le=1000, description="Replicas per track. Default: 2.")
    port: int = Field(default=8080, ge=1, le=65535, description="Container port. Default: 8080.")
    service_port: int = Field(default=80, ge=1, le=65535, description="Service port. Default: 80.")
    hostnames: list[str] = Field(default_factory=list, description="Route hostnames. Default: none.")
    # canary
    canary_image: str | None = Field(default=None, description="Canary image. Default: none (canary at 0).")
    canary_weight: int = Field(default=0, description="Percent of traffic to the canary, 0..100. Default: 0.")
    router: RouterKind = Field(default=RouterKind.GATEWAY_API, description="Default: gateway-api.")
    gateway: str = Field(
        default="gantry-gateway",
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Gateway the route attaches to, as name or namespace/name (Gateway API parentRef, "
        "Istio gateway). Default: gantry-gateway in the service's namespace.",
    )
    # blue/green
    active_color: Color = Field(default=Color.BLUE, description="Color the active Service selects. Default: blue.")
    blue_image: str | None = Field(default=None, description="Blue image. Default: image.")
    green_image: str | None = Field(default=None, description="Green image. Default: image.")
    idle_replicas: int | None = Field(
        default=None, ge=0,
        description="Inactive color's replicas while both colors run the same image (during a switch it runs "
        "the full count). Default: None, meaning 0 in dev and staging, replicas in prod.",
    )
    # workload
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Default: small, limited.")
    readiness: ProbeSpec = Field(default_factory=lambda: ProbeSpec(path="/ready"), description="Default: /ready.")
    liveness: ProbeSpec = Field(
        default_factory=lambda: ProbeSpec(path="/healthz", initial_delay_seconds=5), description="Default: /healthz."
    )
    hpa: HpaSpec = Field(default_factory=HpaSpec, description="Default: off.")
    env: dict[str, str] = Field(default_factory=dict, description="Plain environment variables. Default: none.")
    run_as_user: int = Field(
        default=65532, ge=1, le=2147483647,
        description="Numeric non-root UID the container runs as (the distroless 'nonroot' user). Default: 65532.",
    )
    create_namespace: bool = Field(
        default=True,
        description="Create the namespace with restricted Pod Security labels; set false when another "
        "service in the stack (or another team) owns it. Default: true.",
    )

    @model_validator(mode="after")
    def _check(self) -> ServiceSpec:
        raise_first(service_violations(self))
        return self


def service_violations(svc: ServiceSpec) -> list[Violation]:
    out = check_image("image", svc.image)
    for key, value in (("canaryImage", svc.canary_image), ("blueImage", svc.blue_image),
                       ("greenImage", svc.green_image)):
        if value is not None:
            out += check_image(key, value)
    if svc.namespace == "default":
        out.append(Violation("namespace", "an explicit namespace other than 'default'", svc.namespace))
    if not 0 <= svc.canary_weight <= 100:
        out.append(Violation("canaryWeight", "an integer from 0 to 100", svc.canary_weight))
    if svc.canary_weight > 0 and svc.canary_image is None:
        out.append(Violation("canaryImage", f"set when canaryWeight is above 0 ({svc.canary_weight})", None))
    if svc.idle_replicas is not None and svc.idle_replicas > svc.replicas:
        out.append(Violation("idleReplicas", f"<= replicas ({svc.replicas})", svc.idle_replicas))
    ports = {svc.port}
    for probe_name, probe in (("readiness", svc.readiness), ("liveness", svc.liveness)):
        if probe.port not in ports:
            out.append(Violation(f"{probe_name}.port", f"a container port ({svc.port})", probe.port))
    if svc.readiness == svc.liveness:
        out.append(Violation("liveness", "different from readiness", svc.liveness.path))
    for i, host in enumerate(svc.hostnames):
        if not _HOSTNAME.match(host) or len(host) > 253:
            out.append(Violation(f"hostnames[{i}]", "a DNS name such as web.example.com (optionally *.)", host))
    for key in svc.env:
        if not _ENV_NAME.match(key):
            out.append(Violation(f"env.{key}", "a variable name of letters, digits and '_'", key))
    out += _strategy_conflicts(svc)
    return out


def namespace_owner_violations(services: Mapping[str, ServiceSpec]) -> list[Violation]:
    """One service per namespace may create it; a second would collide with the first at apply time."""
    owners: dict[str, str] = {}
    out: list[Violation] = []
    for name, svc in services.items():
        if not svc.create_namespace:
            continue
        owner = owners.setdefault(svc.namespace, name)
        if owner != name:
            out.append(
                Violation(f"services.{name}.createNamespace",
                          f"false when service {owner} already creates namespace {svc.namespace}", True)
            )
    return out


def _strategy_conflicts(svc: ServiceSpec) -> list[Violation]:
    """Keys of the other strategy would be silently ignored; refuse them so a typo cannot hide."""
    if svc.strategy is Strategy.BLUEGREEN:
        out: list[Violation] = []
        if svc.canary_weight != 0:
            out.append(Violation("canaryWeight", "0 for strategy bluegreen (switch with activeColor)",
                                 svc.canary_weight))
        if svc.canary_image is not None:
            out.append(Violation("canaryImage", "unset for strategy bluegreen (use blueImage/greenImage)",
                                 svc.canary_image))
        return out
    return [
        Violation(key, "unset for strategy canary (use image/canaryImage)", value)
        for key, value in (("blueImage", svc.blue_image), ("greenImage", svc.green_image),
                           ("idleReplicas", svc.idle_replicas))
        if value is not None
    ]


_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
