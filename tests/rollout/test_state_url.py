"""``gantry:rollout.state``: the URL grammar, hostile values, and the stack-file error a bad one gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.config import ConfigError, load_stack
from infra.rollout.state import project_states, stack_state
from infra.settings.state_url import DynamoState, S3Location, SqliteState, parse_state_url

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, expected", [
    ("sqlite", SqliteState()),
    (" sqlite ", SqliteState()),
    ("dynamodb://gantry-rollouts?region=us-east-1", DynamoState("gantry-rollouts", "us-east-1")),
    ("dynamodb://t.x_y?region=eu-west-2&checkpoints=s3://acme-cp/roll/outs&namespace=shop",
     DynamoState("t.x_y", "eu-west-2", S3Location("acme-cp", "roll/outs"), "shop")),
    ("dynamodb://tab?checkpoints=s3://acme-cp&region=us-gov-west-1",
     DynamoState("tab", "us-gov-west-1", S3Location("acme-cp", ""), None)),
])
def test_valid_urls(text: str, expected: object) -> None:
    assert parse_state_url(text) == expected
    assert parse_state_url(str(expected)) == expected  # str() round-trips


@pytest.mark.parametrize("text, hint", [
    ("s3://bucket/prefix", "S3 holds checkpoints only"),
    ("postgres://x", "sqlite or dynamodb://"),
    ("dynamodb://tab?region=us-east-1&region=us-east-2", "given once"),
    ("dynamodb://t1?region=us-east-1", "table name"),
    ("dynamodb://tab", "region"),
    ("dynamodb://tab?region=mars-1", "region"),
    ("dynamodb://tab?region=us-east-1&endpoint=http://evil", "'endpoint' is not one of"),
    ("dynamodb://tab?region=us-east-1&checkpoints=s3://UPPER/x", "bucket"),
    ("dynamodb://tab?region=us-east-1&checkpoints=s3://ok-bucket/a//b", "prefix"),
    ("dynamodb://tab/path?region=us-east-1", "sqlite or dynamodb://"),
    ("dynamodb://tab?region=us-east-1&namespace=a b", "namespace"),
    ("dynamodb://tab?region=us-east-1#frag", "sqlite or dynamodb://"),
    ("[/red]" * 40, "sqlite or dynamodb://"),
])
def test_invalid_urls_name_the_field_and_the_form(text: str, hint: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_state_url(text)
    message = str(info.value)
    assert message.startswith("rollout.state must be ") and hint in message
    assert "\n" not in message and len(message) < 400  # one line, a long value cut


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.from_regex(r"dynamodb://[a-z\-]{0,8}\?[a-z=&:/\-]{0,40}", fullmatch=True))
def test_any_text_parses_or_is_refused_with_a_value_error(text: str) -> None:
    try:
        parsed = parse_state_url(text)
    except ValueError as exc:
        assert str(exc).startswith("rollout.state must be ")
    else:
        assert parse_state_url(str(parsed)) == parsed


def _stack(tmp: Path, state: str) -> Path:
    (tmp / "stacks").mkdir(parents=True, exist_ok=True)
    (tmp / "Pulumi.yaml").write_text("name: shop\nruntime: python\nstackConfigDir: stacks\n")
    (tmp / "stacks" / "Pulumi.prod.yaml").write_text(f"""config:
  gantry:cloud: local
  gantry:environment: prod
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
  gantry:rollout:
    state: "{state}"
    target: file
""")
    return tmp


def test_the_stack_file_value_is_validated_at_load(tmp_path: Path) -> None:
    _stack(tmp_path, "s3://bucket/prefix")
    with pytest.raises(ConfigError) as info:
        load_stack("prod", tmp_path / "stacks")
    assert "rollout.state" in str(info.value) and "checkpoints=" in str(info.value)


def test_a_bad_state_is_exit_2_with_one_line_before_anything_is_touched(tmp_path: Path) -> None:
    project = _stack(tmp_path, "dynamodb://tab?region=nowhere")
    done = subprocess.run([sys.executable, "-m", "infra.cli", "rollout", "start", "--stack", "prod", "--service",
                           "web", "--image", "app:2.0", "--project", str(project)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "rollout.state" in done.stderr and "Traceback" not in done.stderr
    assert not (project / ".gantry").exists()


def test_the_cli_finds_the_backends_the_stack_files_name(tmp_path: Path) -> None:
    url = "dynamodb://tab?region=us-east-1&checkpoints=s3://acme-cp/rollouts"
    project = _stack(tmp_path, url)
    (project / "stacks" / "Pulumi.dev.yaml").write_text("config:\n  gantry:cloud: local\n")
    (project / "stacks" / "Pulumi.broken.yaml").write_text("config: [")
    assert stack_state(project, "prod") == parse_state_url(url)
    assert stack_state(project, "dev") == SqliteState()
    assert stack_state(project, "missing") == SqliteState()
    assert project_states(project) == [SqliteState(), parse_state_url(url)]
