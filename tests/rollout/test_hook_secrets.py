"""Secrets through hooks: a command hook sees only PATH, HOME, GANTRY_* and its allow-list, and every secret Gantry
holds (notifier URLs, from the stack or urlEnv, and hook env values marked secret) is masked in every sink: the
journal file, logs, ``--json`` stdout, the console, ``status`` and ``history``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.config import ConfigError, parse
from infra.errors import InputError
from infra.rollout import factory
from infra.rollout.hooks import CommandHook, hook_environment
from infra.rollout.journal import journal_path
from infra.rollout.masking import Masker, mask_logs
from infra.rollout.seams import HookPhase, JSONObject
from infra.secret_value import SecretValue
from infra.settings.rollout import RolloutSettings

runner = CliRunner()
PY = sys.executable
SLACK = "http://127.0.0.1:9/services/T0SLACK/B0HOOK/xoxSlackWebhookToken42"
DEPLOY_TOKEN = "dpl-7f3a9c1e5b2d4f60"
CLOUD_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PAYLOAD: JSONObject = {"rollout": "r-1", "stack": "drill", "service": "web", "image": "app:2.0", "baseline": "app:1.0",
           "phase": "step", "step": 1, "weight": 50}
EXPECTED_GANTRY = {"GANTRY_HOOK_NAME": "dump", "GANTRY_HOOK_PHASE": "step", "GANTRY_ROLLOUT_ID": "r-1",
                   "GANTRY_STACK": "drill", "GANTRY_SERVICE": "web", "GANTRY_IMAGE": "app:2.0",
                   "GANTRY_BASELINE_IMAGE": "app:1.0", "GANTRY_STEP": "1", "GANTRY_WEIGHT": "50"}


def dump_env(path: Path, found: Path | None = None) -> list[str]:
    """A hook that writes its whole environment to ``path`` and prints every secret it can get hold of:
    its own env, and the Slack URL from ``found`` (a hook can read it elsewhere than from its env)."""
    leak = f"pathlib.Path({str(found)!r}).read_text()" if found else "env.get('SLACK_URL')"
    script = ("import json, os, pathlib, sys; env = dict(os.environ); "
              f"pathlib.Path({str(path)!r}).write_text(json.dumps(env)); "
              f"print({leak}, env.get('DEPLOY_TOKEN'), env.get('AWS_SECRET_ACCESS_KEY')); "
              f"print({leak}, file=sys.stderr)")
    return [PY, "-c", script]


# --------------------------------------------------------------------------- the environment


def test_a_command_hook_gets_a_minimal_environment_and_its_documented_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CLOUD_KEY)
    monkeypatch.setenv("SLACK_URL", SLACK)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "hunter22")
    monkeypatch.setenv("HOME", str(tmp_path))
    seen = tmp_path / "env.json"
    hook = CommandHook("dump", HookPhase.STEP, dump_env(seen), env={"KUBECONFIG": "/k/config"})
    result = hook.run(PAYLOAD)
    assert result.ok, result.detail
    env = json.loads(seen.read_text())
    # LC_CTYPE may be added by the interpreter itself (PEP 538 locale coercion), never by Gantry.
    env.pop("LC_CTYPE", None)
    assert env == {"PATH": sys_path(), "HOME": str(tmp_path), "KUBECONFIG": "/k/config", **EXPECTED_GANTRY}


def sys_path() -> str:
    import os

    return os.environ["PATH"]


def test_the_allow_list_cannot_override_gantry_variables() -> None:
    env = hook_environment("h", HookPhase.ROLLBACK, {"image": "app:2"}, {"GANTRY_IMAGE": "evil"}, base={})
    assert env["GANTRY_IMAGE"] == "app:2" and env["GANTRY_HOOK_PHASE"] == "rollback"
    assert "PATH" not in env and "HOME" not in env  # only what the base has


def test_hook_env_is_resolved_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RolloutSettings.model_validate({"hooks": [{"name": "h", "phase": "step", "argv": ["x"],
                                                          "env": ["KUBECONFIG", {"name": "T", "value": "lit"}]}]})
    monkeypatch.delenv("KUBECONFIG", raising=False)
    with pytest.raises(InputError, match=r"rollout.hooks\[0\].env.KUBECONFIG must be set in Gantry's environment"):
        factory.make_hooks(settings)
    monkeypatch.setenv("KUBECONFIG", "/k")
    hook = factory.make_hooks(settings)[0]
    assert isinstance(hook, CommandHook) and dict(hook.env) == {"KUBECONFIG": "/k", "T": "lit"}


@pytest.mark.parametrize(("hooks", "message"), [
    ([{"name": "h", "phase": "step", "argv": ["x"], "env": ["GANTRY_HOOK_PHASE"]}],
     "gantry:rollout.hooks[0].env[0].name must be a name outside GANTRY_*"),
    ([{"name": "h", "phase": "step", "argv": ["x"], "env": ["A", {"name": "A", "value": "b"}]}],
     "gantry:rollout.hooks[0].env must be a list of distinct variable names"),
    ([{"name": "h", "phase": "step", "argv": ["x"], "env": ["BAD-NAME"]}],
     "gantry:rollout.hooks[0].env[0].name must be a string matching"),
    ([{"name": "h", "phase": "step", "url": "http://127.0.0.1:9/h", "env": ["A"]}],
     "gantry:rollout.hooks[0].env must be empty for an HTTP hook"),
    ([{"name": "h", "phase": "step", "argv": ["x"], "env": [{"name": "A", "secret": "maybe"}]}],
     "gantry:rollout.hooks[0].env[0].secret must be true or false"),
])
def test_hook_env_is_validated_config(hooks: list[object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"cloud": "local", "environment": "e", "tier": "dev", "rollout": {"hooks": hooks}}, "s.yaml")
    assert message in str(info.value)


@pytest.mark.parametrize(("rollout", "key", "how"), [
    ({"notifications": [{"kind": "slack", "url": SecretValue("u")}]}, "rollout.notifications[0].url", "urlEnv"),
    ({"hooks": [{"name": "h", "phase": "step", "argv": ["x"], "env": [{"name": "T", "value": SecretValue("t")}]}]},
     "rollout.hooks[0].env[0].value", "secret: true"),
    ({"hooks": [{"name": "h", "phase": "step", "url": SecretValue("h")}]}, "rollout.hooks[0].url", "env"),
])
def test_a_secure_value_where_plaintext_is_needed_says_how_to_supply_it(rollout: dict[str, object], key: str,
                                                                         how: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"cloud": "local", "environment": "e", "tier": "dev", "rollout": rollout}, "s.yaml")
    text = str(info.value)
    assert f"gantry:{key} must be a plain value, but a secure: value was given" in text and how in text
    assert "http(s)" not in text


def test_a_secure_notifier_url_in_a_stack_file_exits_2_with_the_accurate_message(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: d\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.drill.yaml").write_text(
        "config:\n  gantry:cloud: local\n  gantry:environment: d\n  gantry:tier: dev\n"
        "  gantry:services:\n    web: {namespace: web, image: 'app:1.0', strategy: canary}\n"
        "  gantry:rollout:\n    notifications:\n      - kind: slack\n        url:\n          secure: AAABAKx1\n")
    result = runner.invoke(app, ["rollout", "start", "--stack", "drill", "--service", "web", "--image", "app:2.0",
                                 "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "gantry:rollout.notifications[0].url must be a plain value, but a secure: value was given" in result.stderr
    assert "urlEnv" in result.stderr and "http(s)" not in result.stderr
    assert not (tmp_path / ".gantry").exists()


# --------------------------------------------------------------------------- masking in every sink


def test_known_secrets_are_notifier_urls_and_secret_hook_values_only() -> None:
    settings = RolloutSettings.model_validate({
        "notifications": [{"kind": "slack", "urlEnv": "SLACK_URL"}, {"url": "https://example.test/hook/abcd"}],
        "hooks": [{"name": "h", "phase": "step", "argv": ["x"],
                   "env": [{"name": "DEPLOY_TOKEN", "secret": True}, {"name": "REGION", "value": "eu-west-1"}]}]})
    secrets = factory.known_secrets(settings, {"SLACK_URL": SLACK, "DEPLOY_TOKEN": DEPLOY_TOKEN})
    assert secrets == (SLACK, "https://example.test/hook/abcd", DEPLOY_TOKEN)


def test_log_lines_are_masked_whichever_logger_writes_them(caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    before = {h: list(h.filters) for h in root.handlers}
    try:
        mask_logs(Masker([DEPLOY_TOKEN]))
        with caplog.at_level(logging.WARNING):
            logging.getLogger("infra.rollout.somewhere").warning("token %s leaked", DEPLOY_TOKEN)
        assert DEPLOY_TOKEN not in caplog.text and "token *** leaked" in caplog.text
    finally:
        for h in root.handlers:
            h.filters[:] = before.get(h, [])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    gate = f"{PY} -c \\\"print(0.0)\\\""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: drill\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.drill.yaml").write_text(f"""config:
  gantry:cloud: local
  gantry:environment: drill
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
  gantry:rollout:
    steps: [50, 100]
    interval: 0s
    threshold: 1
    judge: threshold
    target: file
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{gate}", max: 0.05}}]
    notifications:
      - kind: slack
        urlEnv: SLACK_URL
    hooks:
      - name: dump
        phase: step
        argv: {json.dumps(dump_env(tmp_path / "hook-env.json", tmp_path / "found-url"))}
        env:
          - name: DEPLOY_TOKEN
            secret: true
""")
    (tmp_path / "found-url").write_text(SLACK)
    return tmp_path


def test_secrets_reach_no_sink_of_a_real_rollout(project: Path) -> None:
    env = {"SLACK_URL": SLACK, "DEPLOY_TOKEN": DEPLOY_TOKEN, "AWS_SECRET_ACCESS_KEY": CLOUD_KEY}
    sinks: list[str] = []
    for args in (["--json"], []):
        result = runner.invoke(app, ["rollout", "start", "--stack", "drill", "--service", "web",
                                     "--image", f"app:{len(sinks) + 2}.0", "--project", str(project), *args],
                               env=env)
        assert result.exit_code == 0, result.stdout + result.stderr
        sinks += [result.stdout, result.stderr]
    events = [json.loads(line) for line in sinks[0].splitlines()]
    hooks = [e for e in events if e["event"] == "hook"]
    assert hooks and all(r["ok"] for e in hooks for r in e["data"]["results"])
    # The hook printed both secrets; they arrive masked, and the cloud key never reached it at all.
    detail = hooks[0]["data"]["results"][0]["detail"]
    assert detail.startswith("exit 0: *** *** None")
    seen = json.loads((project / "hook-env.json").read_text())
    assert seen["DEPLOY_TOKEN"] == DEPLOY_TOKEN
    assert "AWS_SECRET_ACCESS_KEY" not in seen and "SLACK_URL" not in seen  # nothing is inherited
    assert seen["GANTRY_HOOK_PHASE"] == "step" and seen["GANTRY_IMAGE"] == "app:4.0"
    rid = events[-1]["rollout"]
    for args in (["rollout", "status", rid, "--json"], ["rollout", "status", rid], ["rollout", "history"],
                 ["rollout", "history", "--json"]):
        result = runner.invoke(app, [*args, "--project", str(project)], env=env)
        assert result.exit_code == 0
        sinks += [result.stdout, result.stderr]
    journal = journal_path(project)
    raw = b"".join(p.read_bytes() for p in journal.parent.glob(journal.name + "*"))
    for secret in (SLACK, DEPLOY_TOKEN, CLOUD_KEY, "xoxSlackWebhookToken42"):
        assert secret.encode() not in raw, f"{secret} is in the journal"
        for text in sinks:
            assert secret not in text


def test_each_hook_masks_every_secret_of_the_rollout_not_only_its_own(tmp_path: Path) -> None:
    settings = RolloutSettings.model_validate({
        "notifications": [{"kind": "slack", "urlEnv": "SLACK_URL"}],
        "hooks": [{"name": "dump", "phase": "step", "argv": dump_env(tmp_path / "e.json", tmp_path / "url")}]})
    (tmp_path / "url").write_text(SLACK)
    environ = {"SLACK_URL": SLACK}
    hook = factory.make_hooks(settings, secrets=factory.known_secrets(settings, environ), environ=environ)[0]
    result = hook.run(PAYLOAD)
    assert result.ok and SLACK not in result.detail and "xoxSlack" not in result.detail
    assert result.detail == "exit 0: *** None None\n***"


def test_markup_in_journaled_text_prints_literally_in_start_status_and_history(project: Path) -> None:
    # A stack whose name is markup, and a step hook that prints markup and an emoji code on every run.
    name = "x[bold]:cloud:"
    text = (project / "stacks" / "Pulumi.drill.yaml").read_text()
    text = text.replace(json.dumps(dump_env(project / "hook-env.json", project / "found-url")),
                        json.dumps([PY, "-c", "print('[/red] :rocket: ^[a-z]{0,3}$')"]))
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(text)
    env = {"SLACK_URL": SLACK, "DEPLOY_TOKEN": DEPLOY_TOKEN}
    result = runner.invoke(app, ["rollout", "start", "--stack", name, "--service", "web", "--image", "app:2.0",
                                 "--project", str(project)], env=env, terminal_width=200)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "x[bold]:cloud:/web" in result.stdout and "\U0001f680" not in result.stdout
    # The table narrows columns to the (80-column) console, so the name may wrap: no markup, no emoji either way.
    history = runner.invoke(app, ["rollout", "history", "--project", str(project)])
    assert history.exit_code == 0 and "\u2601" not in history.stdout
    record = json.loads(runner.invoke(app, ["rollout", "history", "--json", "--project", str(project)]).stdout
                        .splitlines()[0])
    assert record["stack"] == name
    status = runner.invoke(app, ["rollout", "status", record["rollout"], "--project", str(project)])
    assert status.exit_code == 0 and f"{name}/web" in status.stdout and "\u2601" not in status.stdout
