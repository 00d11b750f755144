"""Realistic Pulumi mocks for offline rendering: schema-complete outputs, cloud facts, deterministic ids.

Used by the render harness (in the project's interpreter) and by ``infra.render`` in-process.
Outputs are derived from inputs and names only (never random), so the same program renders to the
same graph on every run and downstream ``apply``s resolve. Every output a resource type declares in
its SDK gets a value of the declared shape; hand-written rules only make common values realistic.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import cast

import pulumi
from pulumi.runtime import rpc

from . import facts
from .schema import declared, invoke_result_class, resource_class, shape_of

ACCOUNT_ID = "123456789012"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
TENANT_ID = "11111111-1111-1111-1111-111111111111"
GCP_PROJECT = "gantry-render"
FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n").decode()
TIMESTAMP = "2026-01-01T00:00:00Z"

State = dict[str, object]


def _hex(seed: str, n: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _uuid(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _plain(value: object) -> object:
    """Strip Pulumi's secret wrapper so the mocks can compute from the value."""
    return rpc.unwrap_rpc_secret(value)


def kubeconfig(cluster: str, server: str, ca: str = FAKE_CA) -> str:
    """A syntactically valid kubeconfig (JSON is valid YAML) for a rendered cluster."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
            "current-context": cluster,
            "users": [{"name": cluster, "user": {"token": "render-only"}}],
        }
    )


class RealisticMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes the way the cloud would, deterministically."""

    def __init__(self, config: Mapping[str, object] | None = None) -> None:
        cfg = dict(config or {})
        self.aws_region = str(cfg.get("aws:region") or "us-east-1")
        self.gcp_region = str(cfg.get("gcp:region") or "europe-west1")
        self.gcp_project = str(cfg.get("gcp:project") or GCP_PROJECT)
        self.azure_location = str(cfg.get("azure-native:location") or "westeurope")
        self.cloud = "gcp" if "gcp:region" in cfg or "gcp:project" in cfg else (
            "azure" if "azure-native:location" in cfg else "aws")
        self.diagnostics: list[str] = []
        """Warnings for the render's diagnostics (unknown invokes, unknown regions); no duplicates."""

    def _warn(self, message: str) -> None:
        line = f"warning: {message}"
        if line not in self.diagnostics:
            self.diagnostics.append(line)

    # ------------------------------------------------------------------ resources

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, object]]:
        inputs: State = dict(args.inputs)
        typ, name = args.typ, args.name
        if not args.custom:
            return None, inputs  # components have no id or cloud state
        package = typ.split(":", 1)[0]
        if package == "aws":
            rid, extra = self._aws(typ, name, inputs)
        elif package == "gcp":
            rid, extra = self._gcp(typ, name, inputs)
        elif package == "azure-native":
            rid, extra = self._azure(typ, name, inputs)
        elif package == "kubernetes":
            rid, extra = self._kubernetes(typ, name, inputs)
        else:
            rid, extra = f"{name}-{_hex(typ + name, 8)}", {}
        state = {**inputs, **extra}
        cls = resource_class(typ)
        if cls is not None:
            # Every output the SDK declares and neither the inputs nor the rules above set.
            state.update(shape_of(cls, self._namer(typ, name, rid), skip=state))
        if package == "kubernetes" and not typ.endswith(("Patch", "List")):
            self._kubernetes_status(typ, rid, state)
        return rid, state

    # ------------------------------------------------------------------ realistic strings

    def _namer(self, typ: str, name: str, rid: str) -> Callable[[str, str], str]:
        """Realistic strings by property name: ARNs, DNS names, ids, addresses, timestamps."""
        package = typ.split(":", 1)[0]
        module = typ.split(":")[1].split("/")[0] if ":" in typ else ""
        kind = typ.rsplit(":", 1)[-1]
        region = {"aws": self.aws_region, "gcp": self.gcp_region}.get(package, self.azure_location)

        def namer(path: str, prop: str) -> str:
            p = prop.lower()
            h = _hex(f"{typ}|{name}|{path}")
            if p == "arn" or p.endswith("arn"):
                thing = kind[0].lower() + kind[1:] if p == "arn" else prop[:-3]
                return f"arn:aws:{module}:{region}:{ACCOUNT_ID}:{thing}/{name}-{h[:8]}"
            if p in ("dnsname", "hostname", "fqdn", "domainname") or p.endswith(("dns", "dnsname", "hostname", "fqdn")):
                if package == "aws" and module == "ec2":
                    octets = "-".join(str(int(h[i:i + 2], 16)) for i in range(0, 8, 2))
                    scope = "compute-1" if region == "us-east-1" else f"{region}.compute"
                    return f"{'ip' if 'private' in p else 'ec2'}-{octets}.{scope}.amazonaws.com"
                if package == "aws":
                    suffix = "elb.amazonaws.com" if module in ("lb", "alb", "elb") else "amazonaws.com"
                    return f"{name}-{int(h[:9], 16) % 10**10}.{region}.{suffix}"
                return f"{name}-{h[:8]}.{region}.example.internal"
            if p in ("url", "uri", "endpoint", "selflink") or p.endswith(("url", "uri", "endpoint")):
                return f"https://{name}-{h[:8]}.{region}.{package}.example.internal"
            if p.endswith("zoneid") and package == "aws":
                return "Z" + h.upper()[:13]
            if p in ("region",):
                return region
            if p.endswith("availabilityzone") or p in ("zone",):
                return f"{region}a" if package == "aws" else f"{region}-b"
            if p in ("location",):
                return region
            if "cidr" in p:
                return "10.0.0.0/16"
            if p.endswith(("ip", "ipaddress", "address")) and "mac" not in p:
                return f"10.{int(h[:2], 16) % 250}.{int(h[2:4], 16) % 250}.{int(h[4:6], 16) % 250 + 1}"
            if p in ("ownerid", "accountid", "owner"):
                return ACCOUNT_ID
            if p in ("project", "projectid"):
                return self.gcp_project
            if p in ("tenantid",):
                return TENANT_ID
            if p in ("subscriptionid",):
                return SUBSCRIPTION_ID
            if p.endswith(("time", "timestamp", "date", "createdat", "updatedat")) or p in ("created", "lastmodified"):
                return TIMESTAMP
            if p in ("status", "state", "provisioningstate", "phase"):
                return {"aws": "available", "gcp": "RUNNING"}.get(package, "Succeeded")
            if p.endswith(("policy", "document", "json")):
                return "{}"
            if p == "name":
                return name
            if p.endswith("version"):
                return "1"
            if p == "id" or p.endswith("id"):
                return rid if p == "id" else f"{prop[:-2].lower() or 'id'}-{h}"
            if p in ("etag", "fingerprint", "hash") or p.endswith(("hash", "etag", "fingerprint", "digest")):
                return h
            return f"{name}-{h[:8]}"

        return namer

    def _aws(self, typ: str, name: str, inputs: State) -> tuple[str, State]:
        region, seed = self.aws_region, typ + name
        module = typ.split(":")[1].split("/")[0]
        kind = typ.rsplit(":", 1)[-1]
        res_name = str(_plain(inputs.get("name")) or name)
        id_prefixes = {
            "Vpc": "vpc", "Subnet": "subnet", "SecurityGroup": "sg", "InternetGateway": "igw",
            "NatGateway": "nat", "RouteTable": "rtb", "Eip": "eipalloc", "LaunchTemplate": "lt",
            "NetworkAcl": "acl", "VpcEndpoint": "vpce",
        }
        rid = f"{id_prefixes[kind]}-{_hex(seed)}" if kind in id_prefixes else res_name
        extra: State = {}
        if module == "iam":
            arn = f"arn:aws:iam::{ACCOUNT_ID}:{_iam_path(kind)}/{res_name}"
            if kind == "OpenIdConnectProvider":
                url = str(_plain(inputs.get("url", ""))).removeprefix("https://")
                arn = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}"
            extra.update(arn=arn, name=res_name, uniqueId=f"AROA{_hex(seed, 17).upper()}")
            if kind == "RolePolicyAttachment":
                rid = f"{_plain(inputs.get('role'))}-{_hex(seed, 8)}"
        elif kind == "Key" and module == "kms":
            key_id = _uuid(seed)
            rid = key_id
            extra.update(keyId=key_id, arn=f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}")
        elif kind == "Alias" and module == "kms":
            extra.update(arn=f"arn:aws:kms:{region}:{ACCOUNT_ID}:{res_name}")
        elif module == "eks" and kind == "Cluster":
            tag = _hex(seed, 32).upper()
            endpoint = f"https://{tag}.gr7.{region}.eks.amazonaws.com"
            vpc = dict(cast(Mapping[str, object], _plain(inputs.get("vpcConfig")) or {}))
            vpc.setdefault("clusterSecurityGroupId", f"sg-{_hex(seed + 'csg')}")
            vpc.setdefault("vpcId", f"vpc-{_hex(seed + 'vpc')}")
            extra.update(
                arn=f"arn:aws:eks:{region}:{ACCOUNT_ID}:cluster/{res_name}",
                name=res_name,
                endpoint=endpoint,
                status="ACTIVE",
                version=_plain(inputs.get("version")) or "1.33",
                platformVersion="eks.1",
                certificateAuthority={"data": FAKE_CA},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{tag}"}]}],
                vpcConfig=vpc,
            )
        elif module == "s3":
            bucket = str(_plain(inputs.get("bucket")) or name)
            rid = bucket
            extra.update(arn=f"arn:aws:s3:::{bucket}", bucket=bucket,
                         bucketDomainName=f"{bucket}.s3.amazonaws.com")
        elif module == "eks":
            extra.update(arn=f"arn:aws:eks:{region}:{ACCOUNT_ID}:{kind.lower()}/{res_name}", status="ACTIVE")
        elif module == "amp" and kind == "Workspace":
            rid = f"ws-{_uuid(seed)}"
            extra.update(arn=f"arn:aws:aps:{region}:{ACCOUNT_ID}:workspace/{rid}",
                         prometheusEndpoint=f"https://aps-workspaces.{region}.amazonaws.com/workspaces/{rid}/")
        elif module == "amp" and kind == "Scraper":
            rid = f"s-{_uuid(seed)}"
            extra.update(arn=f"arn:aws:aps:{region}:{ACCOUNT_ID}:scraper/{rid}",
                         roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/scraper.aps.amazonaws.com/"
                                 f"AWSServiceRoleForAmazonPrometheusScraper_{_hex(seed, 15)}")
        elif kind == "LaunchTemplate":
            extra.update(arn=f"arn:aws:ec2:{region}:{ACCOUNT_ID}:launch-template/{rid}", latestVersion=1,
                         defaultVersion=1)
        elif kind == "LogGroup":
            extra.update(arn=f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{res_name}")
        elif kind == "Eip":
            extra.update(allocationId=rid, publicIp=f"203.0.113.{int(_hex(seed, 2), 16) % 250 + 1}")
        elif kind == "Subnet":
            extra.update(arn=f"arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/{rid}")
        elif kind == "Vpc":
            extra.update(arn=f"arn:aws:ec2:{region}:{ACCOUNT_ID}:vpc/{rid}",
                         defaultSecurityGroupId=f"sg-{_hex(seed + 'default')}",
                         mainRouteTableId=f"rtb-{_hex(seed + 'main')}")
        else:
            extra.setdefault("arn", f"arn:aws:{module}:{region}:{ACCOUNT_ID}:{kind.lower()}/{rid}")
        extra.setdefault("id", rid)
        return rid, extra

    def _gcp(self, typ: str, name: str, inputs: State) -> tuple[str, State]:
        project = str(_plain(inputs.get("project")) or self.gcp_project)
        kind = typ.rsplit(":", 1)[-1]
        res_name = str(_plain(inputs.get("name")) or name)
        location = str(_plain(inputs.get("location")) or self.gcp_region)
        extra: State = {"project": project, "name": res_name}
        if kind == "KeyRing":
            rid = f"projects/{project}/locations/{location}/keyRings/{res_name}"
        elif kind == "CryptoKey":
            rid = f"{_plain(inputs.get('keyRing'))}/cryptoKeys/{res_name}"
            extra.pop("project")
        elif kind == "Cluster":
            rid = f"projects/{project}/locations/{location}/clusters/{res_name}"
            endpoint = f"10.{int(_hex(typ + name, 2), 16) % 200}.0.2"
            extra.update(
                endpoint=endpoint,
                masterAuth={"clusterCaCertificate": FAKE_CA},
                selfLink=f"https://container.googleapis.com/v1/{rid}",
                location=location,
            )
        elif kind == "NodePool":
            cluster = _plain(inputs.get("cluster"))
            rid = f"projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{res_name}"
        elif kind == "Account":
            account = str(_plain(inputs.get("accountId")) or res_name)
            email = f"{account}@{project}.iam.gserviceaccount.com"
            rid = f"projects/{project}/serviceAccounts/{email}"
            extra.update(email=email, member=f"serviceAccount:{email}")
        elif kind in ("Network", "Subnetwork", "Router", "RouterNat", "Firewall", "Address"):
            scope = "global" if kind in ("Network", "Firewall") else f"regions/{self.gcp_region}"
            rid = f"projects/{project}/{scope}/{kind[0].lower()}{kind[1:]}s/{res_name}"
            extra.update(selfLink=f"https://www.googleapis.com/compute/v1/{rid}")
        else:
            rid = f"projects/{project}/{kind.lower()}s/{res_name}"
        extra.setdefault("id", rid)
        return rid, extra

    def _azure(self, typ: str, name: str, inputs: State) -> tuple[str, State]:
        kind = typ.rsplit(":", 1)[-1]
        module = typ.split(":")[1]
        rg = str(_plain(inputs.get("resourceGroupName")) or "rg")
        # azure-native names each resource by "<kind>Name" (vaultName, keyName, ...) or resourceName.
        own_key = kind[0].lower() + kind[1:] + "Name"
        res_name = str(_plain(inputs.get(own_key)) or _plain(inputs.get("resourceName")) or name)
        base = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}"
        provider = {
            "containerservice": "Microsoft.ContainerService", "keyvault": "Microsoft.KeyVault",
            "compute": "Microsoft.Compute", "network": "Microsoft.Network",
            "operationalinsights": "Microsoft.OperationalInsights", "authorization": "Microsoft.Authorization",
            "managedidentity": "Microsoft.ManagedIdentity",
        }.get(module, f"Microsoft.{module.capitalize()}")
        if kind == "ResourceGroup":
            rid = base
        elif kind == "Key":
            vault = _plain(inputs.get("vaultName"))
            rid = f"{base}/providers/Microsoft.KeyVault/vaults/{vault}/keys/{res_name}"
        elif kind == "Subnet":
            vnet = _plain(inputs.get("virtualNetworkName"))
            rid = f"{base}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{res_name}"
        else:
            plural = kind[0].lower() + kind[1:] + "s"
            rid = f"{base}/providers/{provider}/{plural}/{res_name}"
        extra: State = {"id": rid, "name": res_name, "location": _plain(inputs.get("location")) or self.azure_location}
        principal = _uuid(rid + "principal")
        if isinstance(_plain(inputs.get("identity")), dict):
            identity = dict(cast(Mapping[str, object], _plain(inputs["identity"])))
            identity.update(principalId=principal, tenantId=TENANT_ID)
            # ARM takes user-assigned identities as a list of ids but returns a map keyed by id.
            assigned = identity.get("userAssignedIdentities")
            if isinstance(assigned, list):
                identity["userAssignedIdentities"] = {
                    str(i): {"principalId": _uuid(f"{i}principal"), "clientId": _uuid(f"{i}client")} for i in assigned
                }
            extra["identity"] = identity
        if kind == "ManagedCluster":
            dns = f"{res_name}-{_hex(rid, 8)}"
            extra.update(
                fqdn=f"{dns}.hcp.{self.azure_location}.azmk8s.io",
                privateFQDN=f"{dns}.privatelink.{self.azure_location}.azmk8s.io",
                oidcIssuerProfile={"enabled": True, "issuerURL": f"https://{self.azure_location}.oic.prod-aks.azure.com/{TENANT_ID}/{_uuid(rid)}/"},
                provisioningState="Succeeded",
            )
        elif kind == "Vault":
            extra["properties"] = {**cast(dict[str, object], _plain(inputs.get("properties")) or {}),
                                   "vaultUri": f"https://{res_name}.vault.azure.net/"}
        elif kind == "Key":
            vault = _plain(inputs.get("vaultName"))
            uri = f"https://{vault}.vault.azure.net/keys/{res_name}"
            extra.update(keyUri=uri, keyUriWithVersion=f"{uri}/{_hex(rid, 32)}")
        elif kind == "UserAssignedIdentity":
            extra.update(principalId=principal, clientId=_uuid(rid + "client"), tenantId=TENANT_ID)
        elif kind == "Workspace":
            extra.update(customerId=_uuid(rid + "customer"))
        elif kind == "AzureMonitorWorkspace":
            extra["metrics"] = {"internalId": f"mac_{_uuid(rid)}", "prometheusQueryEndpoint":
                                f"https://{res_name}-{_hex(rid, 8)}.{self.azure_location}.prometheus.monitor.azure.com"}
        return rid, extra

    def _kubernetes(self, typ: str, name: str, inputs: State) -> tuple[str, State]:
        if typ.startswith("pulumi:providers:"):
            return _uuid(typ + name), {}
        metadata = dict(cast(Mapping[str, object], _plain(inputs.get("metadata")) or {}))
        # Kubernetes auto-naming appends a random suffix; ours is derived from the name, so renders are stable.
        metadata.setdefault("name", f"{name}-{_hex(typ + name, 8)}")
        is_namespaced = not typ.endswith((":Namespace", ":ClusterRole", ":ClusterRoleBinding"))
        if is_namespaced:
            metadata.setdefault("namespace", "default")
        metadata.setdefault("uid", _uuid(typ + name))
        ns = metadata.get("namespace")
        rid = f"{ns}/{metadata['name']}" if is_namespaced else str(metadata["name"])
        metadata.setdefault("resourceVersion", str(int(_hex(rid, 6), 16)))
        metadata.setdefault("creationTimestamp", TIMESTAMP)
        metadata.setdefault("generation", 1)
        extra: State = {"metadata": metadata}
        if typ == "kubernetes:core/v1:Service":
            extra["spec"] = {**cast(dict[str, object], _plain(inputs.get("spec")) or {}),
                             "clusterIP": f"172.20.{int(_hex(rid, 2), 16)}.{int(_hex(rid + 'x', 2), 16) % 250 + 1}"}
        return rid, extra

    def _kubernetes_status(self, typ: str, rid: str, state: State) -> None:
        """Status of a scheduled, ready object: replicas ready, pods running, load balancers provisioned."""
        kind = typ.rsplit(":", 1)[-1]
        spec = cast(Mapping[str, object], _plain(state.get("spec")) or {})
        status = dict(cast(Mapping[str, object], state.get("status") or {}))
        host = self._lb_hostname(rid)

        def condition(kind_: str, reason: str) -> dict[str, object]:
            return {"type": kind_, "status": "True", "reason": reason, "message": "", "lastTransitionTime": TIMESTAMP}

        replicas = spec.get("replicas")
        n = int(replicas) if isinstance(replicas, int | float) and not isinstance(replicas, bool) else 1
        if kind == "Service":
            ingress: list[object] = []
            if spec.get("type") == "LoadBalancer":
                entry: dict[str, object] = {"hostname": host}
                if self.cloud != "aws":
                    entry["ip"] = f"20.{int(_hex(rid, 2), 16) % 250}.{int(_hex(rid + 'i', 2), 16) % 250}.10"
                ingress = [entry]
            status = {"loadBalancer": {"ingress": ingress}, "conditions": []}
        elif kind == "Ingress":
            status = {"loadBalancer": {"ingress": [{"hostname": host}]}}
        elif kind in ("Deployment", "ReplicaSet"):
            status = {"observedGeneration": 1, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                      "availableReplicas": n, "conditions": [condition("Available", "MinimumReplicasAvailable"),
                                                             condition("Progressing", "NewReplicaSetAvailable")]}
        elif kind == "StatefulSet":
            revision = f"{rid.rsplit('/', 1)[-1]}-{_hex(rid, 10)}"
            status = {"observedGeneration": 1, "replicas": n, "readyReplicas": n, "currentReplicas": n,
                      "updatedReplicas": n, "availableReplicas": n, "currentRevision": revision,
                      "updateRevision": revision, "collisionCount": 0}
        elif kind == "DaemonSet":
            status = {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                      "numberReady": 3, "numberAvailable": 3, "updatedNumberScheduled": 3, "numberMisscheduled": 0}
        elif kind == "Pod":
            pod_ip = f"10.1.{int(_hex(rid, 2), 16)}.{int(_hex(rid + 'p', 2), 16) % 250 + 1}"
            status = {"phase": "Running", "podIP": pod_ip,
                      "hostIP": "10.0.1.10", "startTime": TIMESTAMP, "qosClass": "Burstable",
                      "conditions": [condition(c, "") for c in ("PodScheduled", "Initialized", "ContainersReady",
                                                                   "Ready")]}
        elif kind == "Job":
            status = {"succeeded": 1, "active": 0, "startTime": TIMESTAMP, "completionTime": TIMESTAMP,
                      "conditions": [condition("Complete", "")]}
        elif kind == "Namespace":
            status = {"phase": "Active"}
        elif kind == "PersistentVolumeClaim":
            requests = cast(Mapping[str, object], cast(Mapping[str, object], spec.get("resources") or {})
                            .get("requests") or {})
            status = {"phase": "Bound", "capacity": dict(requests), "accessModes": spec.get("accessModes") or []}
        elif kind == "HorizontalPodAutoscaler":
            low = spec.get("minReplicas") or 1
            status = {"currentReplicas": low, "desiredReplicas": low, "lastScaleTime": TIMESTAMP}
        elif "conditions" in status:
            status["conditions"] = [condition("Ready", "Ready")]
        if status or "status" in state:
            state["status"] = status

    def _lb_hostname(self, rid: str) -> str:
        h = _hex(rid, 32)
        if self.cloud == "aws":
            return f"a{h}-{int(h[:9], 16) % 10**10}.{self.aws_region}.elb.amazonaws.com"
        if self.cloud == "gcp":
            return f"{h[:12]}.{self.gcp_region}.lb.gantry-render.internal"
        return f"{h[:12]}.{self.azure_location}.cloudapp.azure.com"

    # ------------------------------------------------------------------ invokes

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, object], list[tuple[str, str]] | None]:
        """Answer an invoke: facts for the common ones, the SDK's result shape for all of them."""
        tok, a = args.token, {k: _plain(v) for k, v in dict(args.args).items()}
        cls = invoke_result_class(tok)
        shaped: dict[str, object] = {}
        if cls is not None:
            shaped = shape_of(cls, self._namer(tok, tok.rsplit(":", 1)[-1], _hex(tok + json.dumps(a, sort_keys=True,
                                                                                            default=str))))
            names = declared(cls)
            shaped.update({k: v for k, v in a.items() if k in names and v is not None})
        known = self._known_call(tok, a)
        if known is not None:
            return {**shaped, **known}, []
        if cls is None:
            self._warn(f"invoke {tok} is not modelled offline and its SDK declares no result type; "
                       "it was answered with its own arguments")
            return a, []
        self._warn(f"invoke {tok} is not modelled offline; it was answered with schema-shaped placeholder "
                   f"values ({cls.__name__})")
        return shaped, []

    def _aws_zones(self) -> tuple[list[str], list[str]]:
        region = self.aws_region
        known = facts.AWS_ZONES.get(region)
        if known is None:
            self._warn(f"region {region} is not in the availability-zone facts table; assumed "
                       f"{len(facts.DEFAULT_AWS_ZONES)} zones")
            letters, prefix = facts.DEFAULT_AWS_ZONES, region.replace("-", "")[:6]
        else:
            letters, prefix = known
        return [f"{region}{c}" for c in letters], [f"{prefix}-az{i + 1}" for i in range(len(letters))]

    def _default_vpc(self) -> str:
        return f"vpc-{_hex(self.aws_region + 'default-vpc')}"

    def _default_subnets(self) -> list[tuple[str, str, str]]:
        """(id, zone, cidr) of the default VPC's subnets: one /20 per availability zone."""
        names, _ = self._aws_zones()
        return [(f"subnet-{_hex(self.aws_region + zone + 'default')}", zone, f"172.31.{16 * i}.0/20")
                for i, zone in enumerate(names)]

    def _aws_call(self, tok: str, a: dict[str, object]) -> dict[str, object] | None:
        """The default VPC, its subnets and security group, AMIs and SSM AMI parameters."""
        region = self.aws_region
        if tok == "aws:ec2/getVpc:getVpc":
            vpc = str(a.get("id") or self._default_vpc())
            default = vpc == self._default_vpc()
            return {"id": vpc, "arn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:vpc/{vpc}",
                    "cidrBlock": facts.AWS_DEFAULT_VPC_CIDR if default else "10.0.0.0/16", "default": default,
                    "state": "available", "ownerId": ACCOUNT_ID, "instanceTenancy": "default",
                    "enableDnsHostnames": True, "enableDnsSupport": True,
                    "mainRouteTableId": f"rtb-{_hex(vpc + 'main')}", "dhcpOptionsId": f"dopt-{_hex(vpc)}",
                    "cidrBlockAssociations": [{"associationId": f"vpc-cidr-assoc-{_hex(vpc)}",
                                               "cidrBlock": facts.AWS_DEFAULT_VPC_CIDR, "state": "associated"}]}
        if tok in ("aws:ec2/getSubnets:getSubnets", "aws:ec2/getSubnetIds:getSubnetIds"):
            ids = [sid for sid, _, _ in self._default_subnets()]
            return {"ids": ids, "id": region, **({"vpcId": a.get("vpcId")} if "vpcId" in a else {})}
        if tok == "aws:ec2/getSubnet:getSubnet":
            subnets = self._default_subnets()
            wanted = a.get("id") or a.get("availabilityZone")
            chosen = next((s for s in subnets if wanted in (s[0], s[1])), subnets[0])
            sid, zone, cidr = chosen
            return {"id": sid, "arn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/{sid}", "availabilityZone": zone,
                    "cidrBlock": cidr, "vpcId": self._default_vpc(), "defaultForAz": True,
                    "mapPublicIpOnLaunch": True, "state": "available", "ownerId": ACCOUNT_ID,
                    "availableIpAddressCount": 4091}
        if tok == "aws:ec2/getSecurityGroup:getSecurityGroup":
            vpc = str(a.get("vpcId") or self._default_vpc())
            sg = str(a.get("id") or f"sg-{_hex(vpc + str(a.get('name') or 'default'))}")
            return {"id": sg, "name": a.get("name") or "default", "vpcId": vpc,
                    "arn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group/{sg}", "description":
                        "default VPC security group"}
        if tok in ("aws:ec2/getAmi:getAmi", "aws:ec2/getAmiIds:getAmiIds"):
            filters = cast(list[Mapping[str, object]], a.get("filters") or [])
            pattern = next((str((f.get("values") or ["ami"])[0]) for f in filters  # type: ignore[index]
                            if f.get("name") == "name"), str(a.get("nameRegex") or "ami-*"))
            image = f"ami-{_hex(region + pattern)}"
            if tok.endswith("getAmiIds"):
                return {"ids": [image], "id": region}
            owners = cast(list[str], a.get("owners") or ["amazon"])
            owner = facts.AWS_AMAZON_OWNER if owners[0] == "amazon" else str(owners[0])
            arch = "arm64" if "arm64" in pattern or "aarch64" in pattern else "x86_64"
            return {"id": image, "imageId": image, "name": pattern.replace("*", "20260101"), "architecture": arch,
                    "ownerId": owner, "imageOwnerAlias": owners[0] if owners[0] == "amazon" else None,
                    "arn": f"arn:aws:ec2:{region}::image/{image}", "creationDate": TIMESTAMP, "state": "available",
                    "rootDeviceName": "/dev/xvda", "rootDeviceType": "ebs", "virtualizationType": "hvm",
                    "hypervisor": "xen", "imageType": "machine", "public": True, "enaSupport": True,
                    "platformDetails": "Linux/UNIX", "mostRecent": bool(a.get("mostRecent"))}
        if tok == "aws:ssm/getParameter:getParameter":
            name = str(a.get("name") or "")
            value = f"ami-{_hex(region + name)}" if "ami" in name else f"{name.rsplit('/', 1)[-1]}-value"
            return {"id": name, "name": name, "value": value, "insecureValue": value, "type": "String",
                    "version": 1, "arn": f"arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter{name}"}
        return None

    def _known_call(self, tok: str, a: dict[str, object]) -> dict[str, object] | None:
        aws = self._aws_call(tok, a)
        if aws is not None:
            return aws
        if tok == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/render",
                    "userId": "AIDARENDER", "id": ACCOUNT_ID}
        if tok == "aws:index/getRegion:getRegion":
            region = str(a.get("name") or a.get("region") or self.aws_region)
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com",
                    "description": region}
        if tok == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names, ids = self._aws_zones()
            return {"names": names, "zoneIds": ids, "id": self.aws_region, "groupNames": [self.aws_region]}
        if tok == "aws:iam/getPolicyDocument:getPolicyDocument":
            doc = _policy_document(a)
            return {"json": doc, "minifiedJson": doc, "id": _hex(doc, 10)}
        if tok == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": self.gcp_project, "region": self.gcp_region, "zone": f"{self.gcp_region}-b",
                    "accessToken": "render-only", "id": self.gcp_project}
        if tok == "gcp:organizations/getProject:getProject":
            project = str(a.get("projectId") or self.gcp_project)
            return {"projectId": project, "number": str(int(_hex(project, 10), 16) % 10**12), "name": project,
                    "id": f"projects/{project}"}
        if tok == "gcp:compute/getZones:getZones":
            region = str(a.get("region") or self.gcp_region)
            letters = facts.GCP_ZONES.get(region)
            if letters is None:
                self._warn(f"region {region} is not in the zone facts table; assumed "
                           f"{len(facts.DEFAULT_GCP_ZONES)} zones")
            return {"names": [f"{region}-{c}" for c in letters or facts.DEFAULT_GCP_ZONES], "id": region,
                    "region": region}
        if tok.startswith("azure-native:authorization:getClientConfig"):
            return {"clientId": _uuid("client"), "objectId": _uuid("object"), "subscriptionId": SUBSCRIPTION_ID,
                    "tenantId": TENANT_ID}
        if tok.startswith("azure-native:containerservice:listManagedCluster"):
            cluster = str(a.get("resourceName") or "cluster")
            rg = str(a.get("resourceGroupName") or "rg")
            # The same private FQDN the ManagedCluster mock reports, so kubeconfig and endpoint agree.
            rid = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}/providers/Microsoft.ContainerService/"
                   f"managedClusters/{cluster}")
            server = f"https://{cluster}-{_hex(rid, 8)}.privatelink.{self.azure_location}.azmk8s.io:443"
            value = base64.b64encode(kubeconfig(cluster, server).encode()).decode()
            return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
        return None


def _iam_path(kind: str) -> str:
    return {"Role": "role", "Policy": "policy", "User": "user", "InstanceProfile": "instance-profile",
            "Group": "group"}.get(kind, kind.lower())


def _policy_document(args: Mapping[str, object]) -> str:
    """Render getPolicyDocument's statements into real IAM JSON, so key and trust policies can be checked."""
    statements: list[dict[str, object]] = []
    for raw in cast(list[Mapping[str, object]], args.get("statements") or []):
        st: dict[str, object] = {"Effect": raw.get("effect", "Allow")}
        if raw.get("sid"):
            st["Sid"] = raw["sid"]
        for key, out in (("actions", "Action"), ("notActions", "NotAction"),
                         ("resources", "Resource"), ("notResources", "NotResource")):
            if raw.get(key):
                st[out] = raw[key]
        for key, out in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            principals = cast(list[Mapping[str, object]], raw.get(key) or [])
            if principals:
                merged: dict[str, object] = {}
                for p in principals:
                    merged[str(p.get("type"))] = p.get("identifiers")
                st[out] = merged
        conditions = cast(list[Mapping[str, object]], raw.get("conditions") or [])
        if conditions:
            cond: dict[str, dict[str, object]] = {}
            for c in conditions:
                cond.setdefault(str(c.get("test")), {})[str(c.get("variable"))] = c.get("values")
            st["Condition"] = cond
        statements.append(st)
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
