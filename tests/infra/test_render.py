"""The offline renderer on a foreign project: real parents and dependencies, engine-form inputs, masked secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.config import ConfigError
from infra.render import STACK_TYPE, ProjectError, RenderError, render_callable, render_project

JsonDoc = dict[str, Any]
"""A rendered document as ``json`` parsed it: the tests assert its shape, so its values are ``Any``."""

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FOREIGN = FIXTURES / "foreign_project"


@pytest.fixture(scope="module")
def foreign() -> JsonDoc:
    return render_project(FOREIGN, "dev").to_json()


def _one(doc: JsonDoc, type_: str, name: str) -> JsonDoc:
    found: list[JsonDoc] = [r for r in doc["resources"] if r["type"] == type_ and r["name"] == name]
    assert len(found) == 1, f"{type_} {name}: {len(found)} found"
    return found[0]


def test_foreign_project_is_read_through_its_own_pulumi_yaml(foreign: JsonDoc) -> None:
    assert foreign["schemaVersion"] == 1
    assert foreign["project"] == "foreign-shop" and foreign["stack"] == "dev"
    assert str(foreign["stackFile"]).endswith("config/Pulumi.dev.yaml")  # stackConfigDir honoured
    assert foreign["summary"] == {
        "resources": 7,
        "byType": {
            "aws:iam/role:Role": 1, "aws:iam/rolePolicy:RolePolicy": 1, "aws:s3/bucket:Bucket": 1,
            "kubernetes:apps/v1:Deployment": 1, "kubernetes:core/v1:Namespace": 1,
            "kubernetes:core/v1:Secret": 1, "kubernetes:core/v1:Service": 1,
        },
    }


def test_parents_and_dependencies_are_captured(foreign: JsonDoc) -> None:
    stack = _one(foreign, STACK_TYPE, "foreign-shop-dev")
    policy = _one(foreign, "aws:iam/rolePolicy:RolePolicy", "app-read-assets")
    role = _one(foreign, "aws:iam/role:Role", "app-role")
    bucket = _one(foreign, "aws:s3/bucket:Bucket", "assets")
    deployment = _one(foreign, "kubernetes:apps/v1:Deployment", "frontend")
    secret = _one(foreign, "kubernetes:core/v1:Secret", "db")
    assert policy["parent"] == stack["urn"]
    assert set(policy["dependencies"]) == {role["urn"], bucket["urn"]}
    assert policy["propertyDependencies"] == {"policy": [bucket["urn"]], "role": [role["urn"]]}
    # explicit depends_on is recorded as well as data dependencies
    assert secret["urn"] in deployment["dependencies"]


def test_inputs_are_engine_form_and_outputs_are_realistic(foreign: JsonDoc) -> None:
    role = _one(foreign, "aws:iam/role:Role", "app-role")
    assert "assumeRolePolicy" in role["inputs"]
    assert role["outputs"]["arn"] == "arn:aws:iam::123456789012:role/app-role"
    policy = _one(foreign, "aws:iam/rolePolicy:RolePolicy", "app-read-assets")
    # the bucket ARN flowed through an apply into the policy document: downstream applies resolve
    doc = json.loads(policy["inputs"]["policy"])
    assert doc["Statement"][0]["Resource"] == "arn:aws:s3:::storefront-assets/*"
    deployment = _one(foreign, "kubernetes:apps/v1:Deployment", "frontend")
    spec = deployment["inputs"]["spec"]
    assert spec["selector"]["matchLabels"] == {"app": "frontend"}
    assert spec["template"]["spec"]["containers"][0]["env"][0]["value"] == "storefront-assets"
    assert deployment["inputs"]["metadata"]["namespace"] == "shop"


def test_secure_config_becomes_a_masked_placeholder(foreign: JsonDoc) -> None:
    secret = _one(foreign, "kubernetes:core/v1:Secret", "db")
    assert secret["inputs"]["stringData"] == "[secret]"
    assert foreign["outputs"]["dbPassword"] == "[secret]"
    assert "ZW5jcnlwdGVk" not in json.dumps(foreign)


def test_rendering_is_stable(foreign: JsonDoc) -> None:
    again = render_project(FOREIGN, "dev").to_json()
    again["stackFile"] = foreign["stackFile"]
    assert json.dumps(again, sort_keys=True) == json.dumps(foreign, sort_keys=True)


def _project(tmp_path: Path, body: str, name: str = "broken") -> Path:
    (tmp_path / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(body)
    return tmp_path


def test_program_exception_names_project_stack_cause_and_line(tmp_path: Path) -> None:
    body = "import pulumi\nraise ValueError('bucket name taken')\n"
    result = render_project(_project(tmp_path, body), "dev")
    assert result.partial and result.error is not None
    assert result.error_message() == ("project broken, stack dev: the program raised ValueError: bucket name taken "
                                      "at __main__.py:2; the graph is partial (0 resource(s) registered before "
                                      "the error)")
    assert 'File "__main__.py", line 2' in result.error.traceback


def test_exception_inside_an_apply_keeps_the_graph_and_points_at_the_apply(tmp_path: Path) -> None:
    body = (
        "import pulumi, pulumi_aws as aws\n"
        "b = aws.s3.Bucket('b')\n"
        "def boom(arn):\n    raise KeyError('no such zone')\n"
        "pulumi.export('x', b.arn.apply(boom))\n"
    )
    result = render_project(_project(tmp_path, body), "dev")
    assert result.error is not None and "no such zone" in result.error.message
    assert str(result.error.location) == "__main__.py:4"
    assert [r.name for r in result.of_type("aws:s3/bucket:Bucket")] == ["b"]
    assert str(result.one("aws:s3/bucket:Bucket").location) == "__main__.py:2"


def test_a_harness_that_cannot_start_is_a_render_error(tmp_path: Path) -> None:
    root = _project(tmp_path, "import pulumi\n")
    (root / "Pulumi.yaml").write_text("name: broken\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n")
    (root / "venv" / "bin").mkdir(parents=True)
    fake = root / "venv" / "bin" / "python"
    fake.write_text("#!/bin/sh\necho 'interpreter exploded' >&2\nexit 7\n")
    fake.chmod(0o755)
    with pytest.raises(RenderError) as info:
        render_project(root, "dev")
    assert "exited with code 7" in str(info.value) and "interpreter exploded" in str(info.value)
    assert str(fake) in str(info.value) and info.value.exit_code == 2


def test_not_a_project_and_not_python(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"no Pulumi\.yaml found"):
        render_project(tmp_path, "dev")
    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: nodejs\n")
    with pytest.raises(ProjectError, match="runtime must be python, but 'nodejs' was given"):
        render_project(tmp_path, "dev")


def test_missing_stack_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="stack file not found; known stacks: dev"):
        render_project(FOREIGN, "prod")


def test_projects_do_not_share_same_named_modules(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root, value in ((a, "alpha"), (b, "beta")):
        root.mkdir()
        (root / "Pulumi.yaml").write_text(f"name: {root.name}\nruntime: python\n")
        (root / "Pulumi.dev.yaml").write_text("config: {}\n")
        (root / "helpers.py").write_text(f"VALUE = {value!r}\n")
        (root / "__main__.py").write_text("import pulumi, helpers\npulumi.export('value', helpers.VALUE)\n")
    assert render_project(a, "dev").outputs == {"value": "alpha"}
    assert render_project(b, "dev").outputs == {"value": "beta"}


def test_render_callable_sees_config_and_components() -> None:
    class Box(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("test:index:Box", name)
            import pulumi_aws as aws

            self.bucket = aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self,
                                                                                   ignore_changes=["tags"]))
            self.register_outputs({})

    def program() -> None:
        cfg = pulumi.Config("app")
        box = Box(cfg.require("name"))
        pulumi.export("arn", box.bucket.arn)

    result = render_callable(program, config={"app:name": "box", "aws:region": "eu-west-1"})
    box = result.one("test:index:Box")
    bucket = result.one("aws:s3/bucket:Bucket")
    assert bucket.parent == box.urn and bucket.custom and not box.custom
    assert bucket.ignore_changes == ("tags",)
    assert result.outputs == {"arn": "arn:aws:s3:::box-bucket"}
    assert [r.name for r in result.children(box.urn)] == ["box-bucket"]


def test_cli_render_json_and_exit_codes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infra.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["render", "--project", str(FOREIGN), "--stack", "dev", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["summary"]["resources"] == 7
    broken = _project(tmp_path, "raise RuntimeError('nope')\n")
    bad = runner.invoke(app, ["render", "--project", str(broken), "--stack", "dev"])
    assert bad.exit_code == 2
    assert "project broken, stack dev: the program raised RuntimeError: nope at __main__.py:1" in bad.stderr
    assert "Traceback" not in bad.output
    debug = runner.invoke(app, ["render", "--project", str(broken), "--stack", "dev", "--debug"])
    assert debug.exit_code == 2
    assert 'File "__main__.py", line 1, in <module>' in debug.stderr
    assert "gantry_render_harness" not in debug.stderr and "site-packages" not in debug.stderr


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infra.cli import app

    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    (tmp_path / "infra").mkdir()
    shutil.copy(root / "infra" / "__main__.py", tmp_path / "infra" / "__main__.py")
    path = tmp_path / "stacks" / "Pulumi.prod.yaml"
    text = path.read_text().replace("minSize: 3\n        desiredSize: 4", "minSize: 5\n        desiredSize: 4")
    path.write_text(text)
    result = CliRunner().invoke(app, ["render", "--project", str(tmp_path), "--stack", "prod"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: stacks/Pulumi.prod.yaml: gantry:cluster.nodePools[1].minSize must be <= desiredSize (4), "
        "but 5 was given"
    ]


def test_integral_numbers_render_as_integers() -> None:
    import pulumi_kubernetes as k8s

    def program() -> None:
        k8s.apps.v1.Deployment("d", spec={"replicas": 3, "selector": {"match_labels": {"a": "b"}},
                                          "template": {"metadata": {"labels": {"a": "b"}}}})
        pulumi.export("weight", 0)
        pulumi.export("ratio", 0.25)

    doc: JsonDoc = render_callable(program).to_json()
    deployment = next(r for r in doc["resources"] if r["type"] == "kubernetes:apps/v1:Deployment")
    assert deployment["inputs"]["spec"]["replicas"] == 3
    assert json.dumps(doc["outputs"], sort_keys=True) == '{"ratio": 0.25, "weight": 0}'
