"""Translate a rendered Pulumi graph into Checkov's inputs: Terraform JSON, ARM templates, Kubernetes manifests.

Pure and deterministic (same graph, same bytes). pulumi-aws and pulumi-gcp are bridged from the Terraform
providers, so a type token maps onto a Terraform resource type and camelCase inputs onto snake_case
attributes; pulumi-azure-native mirrors ARM; pulumi-kubernetes inputs are manifests. Wherever an input
holds another resource's id, ARN or name, the Terraform JSON carries a reference (``${aws_vpc.main.id}``)
so that Checkov's graph checks see the connection. Called by ``policies.bridge.runner``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SECRET = "[secret]"


class Framework(StrEnum):
    """Checkov frameworks the bridge feeds; the values are Checkov's framework names."""

    TERRAFORM = "terraform_json"
    ARM = "arm"
    KUBERNETES = "kubernetes"


@dataclass(frozen=True, slots=True)
class Node:
    """One resource as the translator needs it: inputs, the outputs the mocks computed, and its edges."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    custom: bool = True


@dataclass(frozen=True, slots=True)
class Address:
    """Where a resource went: its framework and the resource id Checkov reports for it."""

    framework: Framework
    resource: str
    urn: str


@dataclass(slots=True)
class Bundle:
    """Files to scan (relative path to text), the address table, and what could not be translated."""

    files: dict[str, str] = field(default_factory=dict)
    addresses: dict[tuple[Framework, str], Address] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Type token to the reason it was not translated (components, providers, unknown packages)."""
    references: int = 0

    @property
    def frameworks(self) -> list[Framework]:
        return sorted({a.framework for a in self.addresses.values()}, key=lambda f: f.value)

    def lookup(self, framework: Framework, resource: str) -> str | None:
        """The URN behind a resource id Checkov reported (Terraform names are unique across types, and
        Checkov reports some Terraform JSON records as ``resource.<name>``)."""
        hit = self.addresses.get((framework, resource))
        if hit is None and framework is Framework.TERRAFORM:
            name = resource.rsplit(".", 1)[-1]
            hit = next((a for (fw, r), a in self.addresses.items()
                        if fw is Framework.TERRAFORM and r.rsplit(".", 1)[-1] == name), None)
        if hit is None and framework is Framework.KUBERNETES:
            # Graph checks report a workload's pods as Pod.<namespace>.<name>.<labels>: the workload itself.
            parts = resource.split(".")
            if len(parts) >= 3:
                hit = next((a for (fw, r), a in sorted(self.addresses.items())
                            if fw is Framework.KUBERNETES and r.split(".")[1:3] == parts[1:3]), None)
        return hit.urn if hit else None


# --------------------------------------------------------------------------- names

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``ipv6CidrBlocks`` -> ``ipv6_cidr_blocks``; ``bucketIAMMember`` -> ``bucket_iam_member``."""
    return _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name)).lower()


# Pulumi token -> Terraform type where the regular rule (below) does not give Terraform's name.
TF_TYPE_EXCEPTIONS: dict[str, str] = {
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/snapshot:Snapshot": "aws_db_snapshot",
    "aws:rds/optionGroup:OptionGroup": "aws_db_option_group",
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:alb/loadBalancer:LoadBalancer": "aws_alb",
    "aws:elb/loadBalancer:LoadBalancer": "aws_elb",
    "aws:cloudtrail/trail:Trail": "aws_cloudtrail",
    "aws:s3/bucketV2:BucketV2": "aws_s3_bucket",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "aws_s3_bucket_replication_configuration",
    "aws:apigateway/restApi:RestApi": "aws_api_gateway_rest_api",
    "aws:apigateway/stage:Stage": "aws_api_gateway_stage",
    "aws:elasticache/cluster:Cluster": "aws_elasticache_cluster",
    "gcp:projects/iAMMember:IAMMember": "google_project_iam_member",
    "gcp:projects/iAMBinding:IAMBinding": "google_project_iam_binding",
    "gcp:serviceaccount/account:Account": "google_service_account",
    "gcp:organizations/project:Project": "google_project",
}
# Modules whose Terraform names drop the module (aws:ec2/vpc:Vpc -> aws_vpc).
_TF_BARE_MODULES = {"aws": {"ec2"}, "gcp": set()}
_TF_PREFIX = {"aws": "aws", "gcp": "google"}
_TF_MODULE_RENAMES = {"apigateway": "api_gateway", "apigatewayv2": "apigatewayv2", "cloudwatch": "cloudwatch"}


def tf_type(token: str) -> str | None:
    """Terraform resource type of a bridged Pulumi type token, or None outside aws/gcp."""
    if token in TF_TYPE_EXCEPTIONS:
        return TF_TYPE_EXCEPTIONS[token]
    parts = token.split(":")
    if len(parts) != 3 or parts[0] not in _TF_PREFIX:
        return None
    package, modpath, _kind = parts
    module, _, resource = modpath.partition("/")
    if not resource:
        return None
    res = snake(resource)
    res = re.sub(r"_?v2$", "", res) if package == "aws" and module == "s3" else res
    if module in _TF_BARE_MODULES[package] or module == "index":
        return f"{_TF_PREFIX[package]}_{res}"
    mod = _TF_MODULE_RENAMES.get(module, snake(module))
    if res.startswith(mod + "_") or res == mod:
        return f"{_TF_PREFIX[package]}_{res}"
    return f"{_TF_PREFIX[package]}_{mod}_{res}"


def _address_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name) or "r"
    if not (base[0].isalpha() or base[0] == "_"):
        base = f"r_{base}"
    out, n = base, 2
    while out in used:
        out, n = f"{base}_{n}", n + 1
    used.add(out)
    return out


# --------------------------------------------------------------------------- Terraform attributes

# Pulumi pluralises repeatable blocks whose Terraform names are singular; key (Pulumi) -> Terraform.
# Scoped per Terraform type where the same Pulumi name means different things; "*" applies everywhere.
BLOCK_RENAMES: dict[str, dict[str, str]] = {
    "*": {"statements": "statement"},
    "google_compute_firewall": {"allows": "allow", "denies": "deny"},
    "google_storage_bucket": {"lifecycleRules": "lifecycle_rule"},
    "google_container_cluster": {"nodePools": "node_pool"},
    "aws_s3_bucket": {"serverSideEncryptionConfigurations": "server_side_encryption_configuration",
                      "serverSideEncryptionConfiguration": "server_side_encryption_configuration",
                      "versionings": "versioning", "loggings": "logging", "lifecycleRules": "lifecycle_rule",
                      "grants": "grant", "corsRules": "cors_rule", "websites": "website",
                      "objectLockConfigurations": "object_lock_configuration",
                      "replicationConfigurations": "replication_configuration"},
    "aws_ecs_task_definition": {"volumes": "volume"},
    "aws_ecs_service": {"loadBalancers": "load_balancer", "orderedPlacementStrategies": "ordered_placement_strategy"},
    "aws_iam_role": {"inlinePolicies": "inline_policy"},
    "aws_instance": {"ebsBlockDevices": "ebs_block_device", "ephemeralBlockDevices": "ephemeral_block_device"},
    "aws_launch_template": {"tagSpecifications": "tag_specifications"},
    "aws_autoscaling_group": {"tags": "tag"},
    "aws_lb_listener": {"defaultActions": "default_action"},
    "aws_alb_listener": {"defaultActions": "default_action"},
    "aws_cloudfront_distribution": {"origins": "origin", "orderedCacheBehaviors": "ordered_cache_behavior"},
    "aws_s3_bucket_server_side_encryption_configuration": {"rules": "rule"},
    "aws_s3_bucket_lifecycle_configuration": {"rules": "rule"},
    "aws_s3_bucket_server_side_encryption_configuration_v2": {"rules": "rule"},
    "aws_db_parameter_group": {"parameters": "parameter"},
    "aws_rds_cluster_parameter_group": {"parameters": "parameter"},
    "aws_db_option_group": {"options": "option"},
    "aws_s3_bucket_replication_configuration": {"rules": "rule"},
    "aws_s3_bucket_notification": {"topics": "topic", "queues": "queue", "lambdaFunctions": "lambda_function"},
    "aws_security_group": {},
}
# Inputs whose keys are the user's own (tags, labels, environment variables): never renamed.
FREEFORM = frozenset({"tags", "tagsAll", "labels", "effectiveLabels", "resourceLabels", "variables", "parameters",
                      "metadata", "defaultTags", "triggers", "userLabels"})
# Terraform does not have these Pulumi-only inputs; dropping them keeps Checkov's parser quiet.
_PULUMI_ONLY = frozenset({"__defaults", "__self__"})


# Inputs that Pulumi takes as JSON text but Terraform programs write as ``jsonencode([...])``, which Checkov's
# HCL parser hands its checks as a decoded list: decode them, or Checkov's ECS checks see nothing.
JSON_TEXT = frozenset({"containerDefinitions"})


def _decoded(value: Any) -> Any:
    """Decoded JSON text without false booleans: Checkov wraps every leaf in a list, so an explicit
    ``false`` would read as a truthy ``[False]``; every ECS container flag defaults to false anyway."""
    try:
        doc = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not False}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(doc)


def _tf_value(tf: str, key: str | None, value: Any, refs: _Refs) -> Any:
    if key in JSON_TEXT:
        return _decoded(value)  # the document's own (AWS API) key names, not Terraform attributes
    if isinstance(value, Mapping):
        if key in FREEFORM:
            return {str(k): _tf_leaf(v, refs) for k, v in value.items()}
        return _tf_object(tf, value, refs)
    if isinstance(value, list | tuple):
        return [_tf_value(tf, None, v, refs) for v in value]
    return _tf_leaf(value, refs)


def _tf_leaf(value: Any, refs: _Refs) -> Any:
    if isinstance(value, str):
        return refs.reference(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _tf_object(tf: str, props: Mapping[str, Any], refs: _Refs) -> dict[str, Any]:
    renames = {**BLOCK_RENAMES["*"], **BLOCK_RENAMES.get(tf, {})}
    out: dict[str, Any] = {}
    top = refs.scope is None
    for key, value in props.items():
        if key in _PULUMI_ONLY or value is None:
            continue
        if top:
            refs.scope = refs.deps.get(key) or ()
        out[renames.get(key, snake(key))] = _tf_value(tf, key, value, refs)
    if top:
        refs.scope = None
    return out


class _Refs:
    """Values that identify another resource (id, ARN, name, self link) -> a Terraform reference to it.

    Candidates are the resources the render recorded that input as depending on; the value must identify
    exactly one of them.
    """

    ATTRIBUTES = ("id", "arn", "selfLink", "name", "bucket", "keyId", "email", "allocationId")

    def __init__(self, index: Mapping[str, Mapping[str, str]], own: str,
                 deps: Mapping[str, Sequence[str]]) -> None:
        self.index = index
        self.own = own
        self.deps = deps
        self.used = 0
        self.scope: Sequence[str] | None = None

    def reference(self, value: str) -> str:
        hits = {u: ref for u, ref in self.index.get(value, {}).items() if u != self.own}
        # Only an input the render saw depend on a resource refers to it: a literal that happens to equal an
        # id is not a connection, and the mocks give e.g. a bucket and its access block the same id.
        hits = {u: ref for u, ref in hits.items() if u in (self.scope or ())}
        if len(hits) != 1:
            return value
        self.used += 1
        return "${" + next(iter(hits.values())) + "}"


def _reference_index(nodes: Iterable[tuple[Node, str]]) -> dict[str, dict[str, str]]:
    """Value -> {urn: ``type.name.attr``} over every translated resource."""
    index: dict[str, dict[str, str]] = {}
    for node, address in nodes:
        values = {**dict(node.outputs), "id": node.id or node.outputs.get("id")}
        for attr in _Refs.ATTRIBUTES:
            v = values.get(attr)
            # Short names ("main", "web") collide with ordinary values; ids and ARNs never do.
            if isinstance(v, str) and len(v) >= 6 and v != SECRET:
                # The first attribute wins: .id, then .arn, the ones Terraform programs wire with.
                index.setdefault(v, {}).setdefault(node.urn, f"{address}.{snake(attr)}")
    return index


# --------------------------------------------------------------------------- ARM

ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
_ARM_TOP = frozenset({"location", "tags", "sku", "kind", "identity", "zones", "plan", "extendedLocation"})
_ARM_PROVIDERS = {
    "containerservice": "Microsoft.ContainerService", "keyvault": "Microsoft.KeyVault", "compute": "Microsoft.Compute",
    "network": "Microsoft.Network", "operationalinsights": "Microsoft.OperationalInsights",
    "authorization": "Microsoft.Authorization", "managedidentity": "Microsoft.ManagedIdentity",
    "storage": "Microsoft.Storage", "sql": "Microsoft.Sql", "web": "Microsoft.Web", "dbforpostgresql":
    "Microsoft.DBforPostgreSQL", "dbformysql": "Microsoft.DBforMySQL", "documentdb": "Microsoft.DocumentDB",
    "cache": "Microsoft.Cache", "containerregistry": "Microsoft.ContainerRegistry", "resources": "Microsoft.Resources",
    "insights": "Microsoft.Insights", "eventhub": "Microsoft.EventHub", "servicebus": "Microsoft.ServiceBus",
}
# Child resources: ARM type path and the inputs naming each parent (outermost first).
ARM_CHILDREN: dict[str, tuple[str, tuple[str, ...]]] = {
    "azure-native:network:SecurityRule": ("Microsoft.Network/networkSecurityGroups/securityRules",
                                          ("networkSecurityGroupName",)),
    "azure-native:network:Subnet": ("Microsoft.Network/virtualNetworks/subnets", ("virtualNetworkName",)),
    "azure-native:storage:BlobContainer": ("Microsoft.Storage/storageAccounts/blobServices/containers",
                                           ("accountName",)),
    "azure-native:keyvault:Key": ("Microsoft.KeyVault/vaults/keys", ("vaultName",)),
    "azure-native:keyvault:Secret": ("Microsoft.KeyVault/vaults/secrets", ("vaultName",)),
    "azure-native:containerservice:AgentPool": ("Microsoft.ContainerService/managedClusters/agentPools",
                                                ("resourceName",)),
}
# Where azure-native renamed an ARM property; Checkov's ARM checks read ARM's names.
ARM_RENAMES: dict[str, dict[str, str]] = {
    "azure-native:storage:StorageAccount": {"networkRuleSet": "networkAcls",
                                            "enableHttpsTrafficOnly": "supportsHttpsTrafficOnly"},
}
# Inputs that name the resource or its parents in azure-native (ARM puts them in the resource's name).
_ARM_NAME_KEYS = frozenset({"resourceGroupName", "resourceName", "accountName", "networkSecurityGroupName",
                            "virtualNetworkName", "vaultName", "workspaceName", "securityRuleName", "containerName",
                            "subnetName", "keyName", "secretName", "agentPoolName", "serverName"})
# Nested lists of sub-resources that azure-native flattens but ARM keeps as {name, properties}.
_ARM_SUBRESOURCES = frozenset({"securityRules", "subnets", "ipConfigurations", "frontendIPConfigurations"})


def arm_type(token: str) -> str | None:
    if token in ARM_CHILDREN:
        return ARM_CHILDREN[token][0]
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "azure-native":
        return None
    module = parts[1].split("/")[0]
    kind = parts[2]
    provider = _ARM_PROVIDERS.get(module, f"Microsoft.{module.capitalize()}")
    return f"{provider}/{kind[0].lower()}{kind[1:]}s"


def _arm_name_keys(token: str) -> set[str]:
    kind = token.rsplit(":", 1)[-1]
    return {*_ARM_NAME_KEYS, kind[0].lower() + kind[1:] + "Name"}


def _arm_resource(node: Node) -> dict[str, Any] | None:
    typ = arm_type(node.type)
    if typ is None:
        return None
    kind = node.type.rsplit(":", 1)[-1]
    own = kind[0].lower() + kind[1:] + "Name"
    name_keys = _arm_name_keys(node.type)
    name = str(node.props.get(own) or node.props.get("resourceName") or node.name)
    if node.type == "azure-native:storage:StorageAccount":
        name = str(node.props.get("accountName") or node.name)
    if node.type in ARM_CHILDREN:
        parents = [str(node.props.get(k) or "parent") for k in ARM_CHILDREN[node.type][1]]
        if node.type == "azure-native:storage:BlobContainer":
            parents.append("default")  # the account's one blob service
        name = "/".join([*parents, str(node.props.get(_child_name_key(node.type)) or node.name)])
    res: dict[str, Any] = {"type": typ, "apiVersion": "2023-01-01", "name": name}
    props: dict[str, Any] = {}
    renames = ARM_RENAMES.get(node.type, {})
    for key, value in node.props.items():
        if key in name_keys or value is None:
            continue
        key = renames.get(key, key)
        if key in _ARM_TOP:
            res[key] = value
        elif key in _ARM_SUBRESOURCES and isinstance(value, list):
            props[key] = [_arm_sub(v) for v in value]
        else:
            props[key] = value
    res["properties"] = props
    return res


def _child_name_key(token: str) -> str:
    return {"azure-native:network:SecurityRule": "securityRuleName", "azure-native:storage:BlobContainer":
            "containerName", "azure-native:network:Subnet": "subnetName", "azure-native:keyvault:Key": "keyName",
            "azure-native:keyvault:Secret": "secretName",
            "azure-native:containerservice:AgentPool": "agentPoolName"}.get(token, "name")


def _ints(value: Any) -> Any:
    """The engine's wire format has only doubles; ``runAsUser: 10001.0`` must read as 10001."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_ints(v) for v in value]
    return value


def _arm_sub(value: Any) -> Any:
    if not isinstance(value, Mapping) or "properties" in value:
        return value
    return {"name": value.get("name"), "properties": {k: v for k, v in value.items() if k not in ("name", "id")}}


# --------------------------------------------------------------------------- Kubernetes


def k8s_api_version(token: str) -> tuple[str, str] | None:
    """``kubernetes:apps/v1:Deployment`` -> ("apps/v1", "Deployment"); core/v1 is plain v1."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, version = parts[1].rsplit("/", 1)
    if group in ("helm.sh", "yaml", "kustomize"):
        return None
    return (version if group == "core" else f"{group}/{version}"), parts[2]


def _manifest(node: Node) -> tuple[dict[str, Any], str] | None:
    av = k8s_api_version(node.type)
    if av is None:
        return None
    api_version, kind = av
    body = {k: v for k, v in node.props.items() if k not in ("apiVersion", "kind")}
    metadata = dict(body.get("metadata") or {})
    out_meta = node.outputs.get("metadata")
    name = metadata.get("name") or (out_meta.get("name") if isinstance(out_meta, Mapping) else None) or node.name
    metadata["name"] = name
    namespace = metadata.get("namespace") or "default"
    cluster_scoped = kind in ("Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                              "CustomResourceDefinition", "PriorityClass")
    if not cluster_scoped and "namespace" not in metadata:
        metadata["namespace"] = namespace
    manifest = {"apiVersion": api_version, "kind": kind, **body, "metadata": metadata}
    # Checkov's Kubernetes resource id: Kind.namespace.name (cluster-scoped kinds use "default").
    rid = f"{kind}.{namespace}.{name}"
    return manifest, rid


# --------------------------------------------------------------------------- bundle


def translate(nodes: Sequence[Node], *, references: bool = True) -> Bundle:
    """Everything translatable in the graph, as files for one Checkov run.

    ``references=False`` writes literal ids instead of Terraform references (what a naive translation does:
    the tests use it to show that Checkov's graph checks then misjudge wired resources).
    """
    bundle = Bundle()
    tf_nodes: list[tuple[Node, str, str]] = []
    used: set[str] = set()
    arm_resources: list[dict[str, Any]] = []
    manifests: list[dict[str, Any]] = []
    for node in nodes:
        if not node.custom:
            continue
        if node.type.startswith("pulumi:"):
            continue
        tf = tf_type(node.type)
        if tf is not None:
            # Names are unique across types: Checkov reports some records as "resource.<name>".
            address = f"{tf}.{_address_name(node.name, used)}"
            tf_nodes.append((node, tf, address))
            bundle.addresses[(Framework.TERRAFORM, address)] = Address(Framework.TERRAFORM, address, node.urn)
            continue
        if node.type.startswith("azure-native:"):
            res = _arm_resource(node)
            if res is not None:
                arm_resources.append(_ints(res))
                rid = f"{res['type']}.{res['name']}"
                bundle.addresses[(Framework.ARM, rid)] = Address(Framework.ARM, rid, node.urn)
                continue
        if node.type.startswith("kubernetes:"):
            made = _manifest(node)
            if made is not None:
                manifests.append(_ints(made[0]))
                bundle.addresses[(Framework.KUBERNETES, made[1])] = Address(Framework.KUBERNETES, made[1], node.urn)
                continue
        bundle.skipped.setdefault(node.type, "no Checkov framework reads this provider")
    if tf_nodes:
        index = _reference_index((n, a) for n, _, a in tf_nodes) if references else {}
        doc: dict[str, dict[str, dict[str, Any]]] = {}
        for node, tf, address in tf_nodes:
            refs = _Refs(index, node.urn, node.property_dependencies)
            body = _tf_object(tf, node.props, refs)
            bundle.references += refs.used
            doc.setdefault(tf, {})[address.split(".", 1)[1]] = body
        bundle.files["main.tf.json"] = json.dumps({"resource": doc}, indent=1, sort_keys=True) + "\n"
    if arm_resources:
        template = {"$schema": ARM_SCHEMA, "contentVersion": "1.0.0.0", "resources": arm_resources}
        bundle.files["azure/template.json"] = json.dumps(template, indent=1, sort_keys=True) + "\n"
    if manifests:
        # JSON documents are YAML; one file per manifest keeps Checkov's line ranges per object.
        for i, m in enumerate(manifests):
            bundle.files[f"k8s/{i:04d}.yaml"] = json.dumps(m, indent=1, sort_keys=True) + "\n"
    return bundle


def nodes_from_render(resources: Iterable[Any]) -> list[Node]:
    """Translator nodes from ``infra.render.RenderedResource`` objects."""
    return [Node(urn=r.urn, type=r.type, name=r.name, props=r.inputs, outputs=r.outputs, id=r.id,
                 property_dependencies=r.property_dependencies, custom=r.custom) for r in resources]
