"""Programs that once rendered wrongly (issue 16): each renders now, check finds what is wrong in them.

The fixtures under tests/fixtures/programs reproduce, one each: a load balancer's dns_name joined into
a URL, a LoadBalancer Service's ingress hostname, default-VPC/subnet/AMI lookups, the real zone count
of us-west-2, a missing package, a program error after registration, and asset archives. One fixture
project pins pulumi 3.150 and pulumi_aws 6 in its own virtualenv (built here, cached between runs), so
the harness is exercised against two pulumi SDK versions and the project's own provider major.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.render import render_callable, render_project

JsonDoc = dict[str, Any]
"""A rendered document as ``json`` parsed it: the tests assert its shape, so its values are ``Any``."""

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = REPO / "tests" / "fixtures" / "programs"
OLD_PULUMI, OLD_AWS = "3.150.0", "6.66.0"
runner = CliRunner()


def _render(name: str, *extra: str) -> tuple[int, JsonDoc, str]:
    result = runner.invoke(app, ["render", "--project", str(PROGRAMS / name), "--stack", "dev", "--format", "json",
                                 *extra])
    return result.exit_code, json.loads(result.stdout), result.stderr


def _check(project: Path, *extra: str) -> tuple[int, JsonDoc, str]:
    result = runner.invoke(app, ["check", "--project", str(project), "--stack", "dev", "--format", "json", *extra])
    return result.exit_code, json.loads(result.stdout), result.stderr


def _resources(doc: JsonDoc, type_: str) -> list[JsonDoc]:
    return [r for r in doc["resources"] if r["type"] == type_]


def _policies(doc: JsonDoc) -> set[str]:
    return {f["policy"] for f in doc["findings"]}


# --------------------------------------------------------------------------- former failures


def test_lb_dns_name_joins_into_a_url_on_the_default_vpc() -> None:
    code, doc, err = _render("lb-url")
    assert code == 0, err
    assert doc["summary"]["resources"] == 4
    url = doc["outputs"]["url"]
    assert url.startswith("http://web-") and url.endswith(".us-east-1.elb.amazonaws.com/")
    lb = _resources(doc, "aws:lb/loadBalancer:LoadBalancer")[0]
    # The default VPC's subnets: one per zone of us-east-1 (six), not an empty list.
    subnets = lb["inputs"]["subnets"]
    assert len(subnets) == 6 and all(s.startswith("subnet-") for s in subnets)
    sg = _resources(doc, "aws:ec2/securityGroup:SecurityGroup")[0]
    tg = _resources(doc, "aws:lb/targetGroup:TargetGroup")[0]
    assert sg["inputs"]["vpcId"] == tg["inputs"]["vpcId"] and sg["inputs"]["vpcId"].startswith("vpc-")
    code, report, _ = _check(PROGRAMS / "lb-url")
    assert code == 1 and {"eks-nodegroup-no-open-ssh", "cloud-required-tags"} <= _policies(report)


def test_loadbalancer_service_has_a_ready_status_and_an_ingress_hostname() -> None:
    code, doc, err = _render("k8s-lb-service")
    assert code == 0, err
    assert doc["summary"]["resources"] == 2
    assert doc["outputs"]["hostname"].endswith(".elb.amazonaws.com")
    assert doc["outputs"]["ready"] == 2  # readyReplicas follows spec.replicas
    deployment = _resources(doc, "kubernetes:apps/v1:Deployment")[0]
    conditions = {c["type"]: c["status"] for c in deployment["outputs"]["status"]["conditions"]}
    assert conditions == {"Available": "True", "Progressing": "True"}
    code, report, _ = _check(PROGRAMS / "k8s-lb-service")
    assert code == 1 and {"service-no-public-exposure", "image-pinned", "container-resources"} <= _policies(report)


def test_ami_default_vpc_and_subnet_lookups_answer_like_the_cloud() -> None:
    code, doc, err = _render("web-server")
    assert code == 0, err
    assert doc["summary"]["resources"] == 2
    server = _resources(doc, "aws:ec2/instance:Instance")[0]
    assert server["inputs"]["ami"].startswith("ami-")
    assert server["inputs"]["subnetId"].startswith("subnet-")
    assert server["inputs"]["tags"]["Name"] == "web in us-east-1a"
    assert doc["outputs"]["subnets"] == 6
    assert doc["outputs"]["publicDns"].endswith(".compute-1.amazonaws.com")
    code, report, _ = _check(PROGRAMS / "web-server")
    assert code == 1 and "eks-nodegroup-no-open-ssh" in _policies(report)


def test_us_west_2_has_four_zones_so_four_subnets() -> None:
    code, doc, err = _render("az-subnets")
    assert code == 0, err
    assert doc["outputs"]["zones"] == ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
    assert len(_resources(doc, "aws:ec2/subnet:Subnet")) == 4
    assert doc["summary"]["resources"] == 5
    # A stack named dev is the dev tier (issue 15): the missing tags are reported but do not block there.
    code, report, _ = _check(PROGRAMS / "az-subnets")
    assert code == 0 and "cloud-required-tags" in _policies(report)
    code, report, _ = _check(PROGRAMS / "az-subnets", "--tier", "prod")
    assert code == 1 and "cloud-required-tags" in _policies(report)


def test_all_stacks_render_in_parallel_with_each_regions_zone_count(tmp_path: Path) -> None:
    project = tmp_path / "az"
    shutil.copytree(PROGRAMS / "az-subnets", project)
    (project / "Pulumi.east.yaml").write_text("config:\n  aws:region: us-east-1\n")
    (project / "Pulumi.osaka.yaml").write_text("config:\n  aws:region: ap-northeast-3\n")
    (project / "Pulumi.mars.yaml").write_text("config:\n  aws:region: mars-north-1\n")
    result = runner.invoke(app, ["render", "--project", str(project), "--all-stacks", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    stacks = {d["stack"]: d for d in json.loads(result.stdout)["stacks"]}
    counts = {name: len(_resources(d, "aws:ec2/subnet:Subnet")) for name, d in stacks.items()}
    assert counts == {"dev": 4, "east": 6, "mars": 3, "osaka": 3}
    # An unknown region is never a silent guess.
    assert any("mars-north-1 is not in the availability-zone facts table" in d for d in stacks["mars"]["diagnostics"])


def test_a_missing_package_names_the_package_and_the_interpreter() -> None:
    code, doc, err = _render("missing-package")
    assert code == 2
    assert doc["partial"] is True and doc["summary"]["resources"] == 2
    assert doc["error"]["missingModule"] == "pulumi_random"
    message = " ".join(err.split())
    assert "pulumi_random" in message and "pip install pulumi-random" in message
    assert sys.executable in message and "current interpreter" in message
    assert "at __main__.py:10" in message
    code, report, err = _check(PROGRAMS / "missing-package")
    assert code == 2  # partial graph: the check cannot pass, whatever it found
    assert {"cloud-required-tags", "eks-nodegroup-no-open-ssh"} <= _policies(report)
    assert report["stacks"][0]["partial"] is True


def test_a_program_error_keeps_every_registered_resource_and_its_line() -> None:
    code, doc, err = _render("program-error")
    assert code == 2
    assert doc["summary"]["resources"] == 3 and doc["partial"] is True
    assert doc["error"] == {"type": "ZeroDivisionError", "message": "integer division or modulo by zero",
                            "location": {"file": "__main__.py", "line": 10}, "missingModule": None}
    assert "ZeroDivisionError" in err and "__main__.py:10" in err and "Traceback" not in err
    debug = runner.invoke(app, ["render", "--project", str(PROGRAMS / "program-error"), "--stack", "dev", "--debug"])
    assert 'File "__main__.py", line 10, in <module>' in debug.stderr
    assert "replicas_per_zone = 3 // len([])" in debug.stderr


@pytest.mark.parametrize("fmt", ["sarif", "junit", "markdown", "text"])
def test_check_of_a_partial_graph_says_so_in_every_format(fmt: str) -> None:
    result = runner.invoke(app, ["check", "--project", str(PROGRAMS / "program-error"), "--stack", "dev",
                                 "--format", fmt])
    assert result.exit_code == 2
    assert "partial" in result.stderr and "ZeroDivisionError" in result.stderr
    if fmt == "sarif":
        run = json.loads(result.stdout)["runs"][0]
        assert run["invocations"][0]["executionSuccessful"] is False
        note = run["invocations"][0]["toolExecutionNotifications"][-1]
        assert "ZeroDivisionError" in note["message"]["text"]
        assert note["locations"][0]["physicalLocation"]["region"]["startLine"] == 10
        assert {r["ruleId"] for r in run["results"]} >= {"cloud-required-tags"}
    elif fmt == "junit":
        assert 'type="partial-graph"' in result.stdout and "ZeroDivisionError" in result.stdout
    else:
        assert "partial" in result.stdout.lower() and "ZeroDivisionError" in result.stdout


def test_assets_and_archives_render_by_content_hash_and_twice_identically() -> None:
    first = runner.invoke(app, ["render", "-p", str(PROGRAMS / "lambda-archive"), "-s", "dev", "-f", "json"])
    second = runner.invoke(app, ["render", "-p", str(PROGRAMS / "lambda-archive"), "-s", "dev", "-f", "json"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert first.stdout == second.stdout  # byte-identical
    doc = json.loads(first.stdout)
    assert "object at 0x" not in first.stdout and str(PROGRAMS) not in json.dumps(doc["resources"])
    code = _resources(doc, "aws:lambda/function:Function")[0]["inputs"]["code"]
    assert code["archive"] == "AssetArchive" and sorted(code["entries"]) == ["config.json", "index.py"]
    import hashlib

    index = (PROGRAMS / "lambda-archive" / "app" / "index.py").read_bytes()
    assert code["entries"]["index.py"]["sha256"] == hashlib.sha256(index).hexdigest()


def test_a_changed_file_changes_the_archive_hash(tmp_path: Path) -> None:
    project = tmp_path / "fn"
    shutil.copytree(PROGRAMS / "lambda-archive", project)
    before = render_project(project, "dev")
    (project / "app" / "layer.py").write_text("print('changed')\n")
    after = render_project(project, "dev")
    layer = "aws:lambda/layerVersion:LayerVersion"
    assert before.one(layer).inputs["code"]["sha256"] != after.one(layer).inputs["code"]["sha256"]
    fn = "aws:lambda/function:Function"
    assert before.one(fn).inputs["code"] == after.one(fn).inputs["code"]


def test_dependencies_and_outputs_are_sorted_whatever_the_registration_order(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: order\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(
        "import pulumi, pulumi_aws as aws, random\n"
        "names = ['zeta', 'alpha', 'mid', 'beta']\n"
        "random.Random().shuffle(names)\n"  # a different order on every run
        "buckets = [aws.s3.Bucket(n) for n in names]\n"
        "aws.s3.Bucket('all', tags={'x': pulumi.Output.all(*[b.id for b in buckets]).apply(lambda _: 'y')},\n"
        "              opts=pulumi.ResourceOptions(depends_on=buckets))\n"
        "for n, b in zip(names, buckets):\n    pulumi.export(n, b.id)\n")
    docs = [json.dumps(render_project(tmp_path, "dev").to_json()) for _ in range(3)]
    assert docs[0] == docs[1] == docs[2]
    doc = json.loads(docs[0])
    combined = next(r for r in doc["resources"] if r["name"] == "all")
    assert combined["dependencies"] == sorted(combined["dependencies"]) and len(combined["dependencies"]) == 4
    assert list(doc["outputs"]) == sorted(doc["outputs"])


# --------------------------------------------------------------------------- schema-complete mocks


def test_every_declared_output_gets_a_value_of_its_shape() -> None:
    import pulumi
    import pulumi_aws as aws
    import pulumi_kubernetes as k8s
    from pulumi import _types

    def program() -> None:
        aws.lb.LoadBalancer("web")
        aws.rds.Instance("db", instance_class="db.t3.micro", engine="postgres", allocated_storage=20)
        k8s.core.v1.Service("svc", spec={"type": "ClusterIP", "ports": [{"port": 80}]})
        pulumi.export("endpoint", aws.rds.Instance.get("imported", "db-1").endpoint)

    result = render_callable(program)
    for type_, cls in (("aws:lb/loadBalancer:LoadBalancer", aws.lb.LoadBalancer),
                       ("aws:rds/instance:Instance", aws.rds.Instance)):
        declared = set(_types.resource_types(cls)) - {"id", "urn"}
        outputs = result.one(type_).outputs
        assert declared <= set(outputs), declared - set(outputs)
        assert all(outputs[k] is not None for k in declared), [k for k in declared if outputs[k] is None]
    lb = result.one("aws:lb/loadBalancer:LoadBalancer").outputs
    assert isinstance(lb["accessLogs"], dict) and isinstance(lb["subnetMappings"], list)
    assert lb["arn"].startswith("arn:aws:lb:") and lb["zoneId"].startswith("Z")
    svc = result.one("kubernetes:core/v1:Service").outputs
    assert svc["status"]["loadBalancer"]["ingress"] == []  # only LoadBalancer Services get an address
    assert svc["spec"]["clusterIP"].startswith("172.20.")


def test_unknown_invokes_are_schema_shaped_and_named_in_a_diagnostic() -> None:
    import pulumi
    import pulumi_aws as aws

    def program() -> None:
        itype = aws.ec2.get_instance_type(instance_type="m5.large")
        pulumi.export("vcpus", itype.default_vcpus)
        pulumi.export("type", itype.instance_type)

    result = render_callable(program)
    assert result.outputs["type"] == "m5.large"  # arguments the result declares are echoed
    assert isinstance(result.outputs["vcpus"], int)
    assert any("aws:ec2/getInstanceType:getInstanceType is not modelled offline" in d for d in result.diagnostics)


def test_values_a_preview_would_not_know_render_as_unknown() -> None:
    import asyncio

    import pulumi
    import pulumi_aws as aws

    def program() -> None:
        value: asyncio.Future[object] = asyncio.get_event_loop().create_future()
        known: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
        value.set_result(None)
        known.set_result(False)
        aws.s3.Bucket("b", bucket=pulumi.Output(set(), value, known))

    bucket = render_callable(program).one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "[unknown]"


# --------------------------------------------------------------------------- source locations


def test_sarif_results_point_at_the_line_that_constructs_the_resource(tmp_path: Path) -> None:
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        result = runner.invoke(app, ["check", "-p", str(REPO / "tests" / "fixtures" / "insecure_project"), "-s",
                                     "dev", "-f", "sarif"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 1
    results = json.loads(result.stdout)["runs"][0]["results"]
    assert results
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        lines = (REPO / loc["artifactLocation"]["uri"]).read_text().splitlines()
        text = lines[loc["region"]["startLine"] - 1]
        kind = r["properties"]["type"].rsplit(":", 1)[-1]
        assert f".{kind}(" in text, (r["ruleId"], r["properties"]["urn"], text)


def test_resources_built_in_the_programs_own_modules_point_into_those_modules(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: modules\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "lib" / "net.py").write_text(
        "import pulumi, pulumi_aws as aws\n"
        "class Edge(pulumi.ComponentResource):\n"
        "    def __init__(self, name):\n"
        "        super().__init__('acme:net:Edge', name)\n"
        "        self.sg = aws.ec2.SecurityGroup(\n"
        "            f'{name}-ssh',\n"
        "            ingress=[{'protocol': 'tcp', 'from_port': 22, 'to_port': 22, 'cidr_blocks': ['0.0.0.0/0']}],\n"
        "            opts=pulumi.ResourceOptions(parent=self))\n")
    (tmp_path / "__main__.py").write_text("from lib.net import Edge\n\nEdge('a')\nEdge('b')\n")
    code, report, _ = _check(tmp_path)
    assert code == 1
    located = {(f["policy"], f["name"], f["file"], f["line"]) for f in report["findings"]}
    assert ("eks-nodegroup-no-open-ssh", "a-ssh", "lib/net.py", 5) in located
    assert ("eks-nodegroup-no-open-ssh", "b-ssh", "lib/net.py", 5) in located
    graph = render_project(tmp_path, "dev")
    assert [str(r.location) for r in graph.of_type("acme:net:Edge")] == ["__main__.py:3", "__main__.py:4"]


# --------------------------------------------------------------------------- the project's environment


def _shared_site_packages() -> Path:
    import grpc  # type: ignore[import-untyped]  # grpcio ships no type information

    return Path(grpc.__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def old_sdk_venv() -> Path:
    """A virtualenv with pulumi 3.150 and pulumi_aws 6 of its own; grpc and friends come from ours.

    Built once and cached (GANTRY_TEST_VENV_CACHE, default ~/.cache/gantry-tests): a no-pip venv, a
    .pth to the shared site-packages for the heavy binary dependencies, and only the two pinned SDKs
    installed into it (pip's download cache keeps repeat builds offline).
    """
    import fcntl

    cache = Path(os.environ.get("GANTRY_TEST_VENV_CACHE", Path.home() / ".cache" / "gantry-tests"))
    venv = cache / f"pulumi-{OLD_PULUMI}-aws-{OLD_AWS}-py{sys.version_info[0]}{sys.version_info[1]}"
    ready = venv / ".gantry-ready"
    cache.mkdir(parents=True, exist_ok=True)
    # Parallel test workers share the cache: one builds, the others wait for it.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            _build_old_sdk_venv(venv, ready)
    return venv


def _build_old_sdk_venv(venv: Path, ready: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_shared_binaries.pth").write_text(f"{_shared_site_packages()}\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                    f"pulumi=={OLD_PULUMI}", f"pulumi_aws=={OLD_AWS}"], check=True, timeout=1200)
    ready.write_text("ok\n")


def _project_with_env(tmp_path: Path, venv: Path, runtime: str, env_dir: str) -> Path:
    project = tmp_path / "aws6"
    shutil.copytree(PROGRAMS / "aws6-venv", project, ignore=shutil.ignore_patterns("venv"))
    (project / env_dir).symlink_to(venv, target_is_directory=True)
    (project / "Pulumi.yaml").write_text(f"name: aws6-venv\nruntime:\n  name: python\n  options:\n{runtime}")
    return project


def test_a_project_virtualenv_with_older_pulumi_and_aws_6_renders_with_those(old_sdk_venv: Path,
                                                                            tmp_path: Path) -> None:
    project = _project_with_env(tmp_path, old_sdk_venv, "    virtualenv: venv\n", "venv")
    result = render_project(project, "dev")
    assert result.error is None, result.error
    assert result.outputs["pulumiAws"] == OLD_AWS and result.outputs["pulumi"] == OLD_PULUMI
    assert result.pulumi_version == OLD_PULUMI and "virtualenv venv" in str(result.interpreter)
    assert result.outputs["subnets"] == 4  # us-west-2, through the old SDK's invoke path
    assert result.outputs["url"].startswith("http://web-")
    bucket = result.one("aws:s3/bucketV2:BucketV2")  # a type pulumi_aws 7 no longer has
    assert bucket.outputs["arn"] and str(bucket.location) == "__main__.py:10"  # stack fallback for old SDKs
    lb = result.one("aws:lb/loadBalancer:LoadBalancer")
    assert str(lb.location) == "__main__.py:11" and lb.outputs["dnsName"].endswith(".elb.amazonaws.com")


def test_uv_and_poetry_environments_are_used(old_sdk_venv: Path, tmp_path: Path) -> None:
    uv = _project_with_env(tmp_path / "uv", old_sdk_venv, "    toolchain: uv\n", ".venv")
    assert render_project(uv, "dev").outputs["pulumiAws"] == OLD_AWS
    poetry_project = _project_with_env(tmp_path / "poetry", old_sdk_venv, "    toolchain: poetry\n", "env")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in for poetry's one query Gantry makes; poetry itself is not installed here.
    fake = bin_dir / "poetry"
    fake.write_text(f"#!/bin/sh\n[ \"$*\" = 'env info --executable' ] && echo {poetry_project}/env/bin/python\n")
    fake.chmod(0o755)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old_path}"
    try:
        result = render_project(poetry_project, "dev")
    finally:
        os.environ["PATH"] = old_path
    assert result.outputs["pulumiAws"] == OLD_AWS and "(poetry)" in str(result.interpreter)


def test_a_declared_but_missing_virtualenv_falls_back_with_a_warning(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(PROGRAMS / "az-subnets", project)
    (project / "Pulumi.yaml").write_text("name: p\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n")
    result = render_project(project, "dev")
    assert result.error is None
    assert any("names virtualenv venv, which does not exist" in d and sys.executable in d
               for d in result.diagnostics)


def test_a_program_cannot_see_gantry_or_shadow_the_standard_library(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: iso\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "platform.py").write_text("raise SystemExit('the stdlib platform module was shadowed')\n")
    (tmp_path / "__main__.py").write_text(
        "import importlib.util, sys, pulumi\n"
        "pulumi.export('gantry', [m for m in ('infra', 'components', 'policies', 'gantry_render_harness')\n"
        "                         if m in sys.modules and 'harness' not in m])\n")
    result = render_project(tmp_path, "dev")
    assert result.error is None, result.error
    assert result.outputs == {"gantry": []}


def test_the_harness_imports_only_the_standard_library_and_pulumi() -> None:
    import ast

    harness = REPO / "infra" / "harness"
    allowed = set(sys.stdlib_module_names) | {"pulumi"}
    for path in harness.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            assert {n.split(".")[0] for n in names} <= allowed, (path.name, names)


def test_what_the_program_prints_stays_out_of_the_json(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: chatty\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text("import sys, pulumi\nprint('hello [red]x[/red]')\n"
                                          "print('oops', file=sys.stderr)\npulumi.export('a', 1)\n")
    result = runner.invoke(app, ["render", "-p", str(tmp_path), "-s", "dev", "-f", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["outputs"] == {"a": 1} and "info: hello [red]x[/red]" in doc["diagnostics"]


def test_a_program_that_hangs_is_stopped_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.errors import InputError
    from infra.render import RenderError

    (tmp_path / "Pulumi.yaml").write_text("name: hang\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setenv("GANTRY_RENDER_TIMEOUT", "3")
    with pytest.raises(RenderError, match=r"did not finish within 3 s \(GANTRY_RENDER_TIMEOUT\)"):
        render_project(tmp_path, "dev")
    monkeypatch.setenv("GANTRY_RENDER_TIMEOUT", "soon")
    with pytest.raises(InputError, match="GANTRY_RENDER_TIMEOUT must be a number of seconds, but 'soon' was given"):
        render_project(tmp_path, "dev")


def test_a_program_that_exits_the_process_is_a_render_error(tmp_path: Path) -> None:
    from infra.render import RenderError

    (tmp_path / "Pulumi.yaml").write_text("name: quit\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text("import os, pulumi_aws as aws\naws.s3.Bucket('b')\nos._exit(5)\n")
    with pytest.raises(RenderError, match=r"exited with code 5 under .* without a result"):
        render_project(tmp_path, "dev")
    (tmp_path / "__main__.py").write_text("import sys, pulumi_aws as aws\naws.s3.Bucket('b')\nsys.exit(4)\n")
    result = render_project(tmp_path, "dev")  # SystemExit is an exception: the graph so far survives
    assert result.error is not None and result.error.type == "SystemExit"
    assert [r.name for r in result.of_type("aws:s3/bucket:Bucket")] == ["b"]
