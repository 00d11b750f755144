"""Issue 17's acceptance tests a-d, and `gantry promote`, with the real Pulumi CLI (marker ``engine``).

The project runs the repository's own program (``infra``, through a two-line ``program/__main__.py``) on
a ``file://`` backend in a temp dir, with a local stack whose services have the bare ``pulumi`` target:
no cloud, no sandbox, no plugin download; each service is its stack outputs. ``gantry`` and ``pulumi``
run as separate processes wherever a user would run them; (b)'s rollout runs in-process only so that an
outside ``pulumi up`` can be run at an exact step. "Changes nothing" is the engine's own verdict:
``pulumi up --expect-no-changes`` fails on any change.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_automation import program_view
from fakes import FakeAnalysis
from gitops_rig import Agreement, gantry_status

from components.k8s.outputs import RolloutState, ServiceOutputs
from components.spec import Strategy
from infra.progress import ENV
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine
from infra.rollout.journal import SqliteJournal, journal_path
from infra.rollout.lock import SqliteLock
from infra.rollout.scheduler import canary_plan
from infra.rollout.seams import AnalysisContext, AnalysisResult, Phase, StackName, Verdict

pytestmark = pytest.mark.engine

V1, V2, V3 = "ghcr.io/acme/web:1.0", "ghcr.io/acme/web:1.1", "ghcr.io/acme/web:1.2"
GATE = f"{sys.executable} -c \\\"import os; print(os.environ.get('GATE_VALUE', '0.0'))\\\""
PULUMI_YAML = "name: gantry\nruntime:\n  name: python\n  options:\n    virtualenv: {venv}\nmain: program/\n" \
              "stackConfigDir: stacks\n"
PROGRAM = 'import runpy\n\nrunpy.run_module("infra", run_name="__main__")\n'


def stack_yaml(name: str, web_image: str = V1, extra: str = "") -> str:
    return f"""config:
  gantry:cloud: local
  gantry:environment: {name}
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "{web_image}", strategy: canary{extra}}}
    api: {{namespace: api, image: "ghcr.io/acme/api:2.0", strategy: bluegreen}}
  gantry:rollout:
    steps: [10, 50, 100]
    interval: 0s
    threshold: 1
    judge: threshold
    target: pulumi
    postPromotionWindow: 0s
    scaleDownDelay: 0s
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{GATE}", max: 0.05}}]
"""


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root / "proj"
        state, home = root / "state", root / "pulumi-home"
        for d in (self.root / "stacks", self.root / "program", state, home):
            d.mkdir(parents=True)
        (self.root / "Pulumi.yaml").write_text(PULUMI_YAML.format(venv=sys.prefix))
        (self.root / "program" / "__main__.py").write_text(PROGRAM)
        self.env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": "gitops-engine",
                    "PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true",
                    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
        self.env.pop(ENV, None)

    def write(self, stack: str, text: str) -> None:
        (self.root / "stacks" / f"Pulumi.{stack}.yaml").write_text(text)

    def pulumi(self, stack: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pulumi", *args, "--stack", stack, "--non-interactive"], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=300)

    def up(self, stack: str, *, expect_no_changes: bool = False) -> None:
        """A plain `pulumi up` by someone else: no gantry step in its environment."""
        args = ["up", "--yes", "--skip-preview"] + (["--expect-no-changes"] if expect_no_changes else [])
        done = self.pulumi(stack, *args)
        assert done.returncode == 0, f"pulumi {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    def outputs(self, stack: str) -> dict[str, object]:
        done = self.pulumi(stack, "stack", "output", "--json")
        assert done.returncode == 0, done.stderr
        value = json.loads(done.stdout)
        assert isinstance(value, dict)
        return value

    def web(self, stack: str = "dev") -> ServiceOutputs:
        return ServiceOutputs.model_validate(self.outputs(stack)["services"]["web"])  # type: ignore[index]

    def gantry(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "infra.cli", *args, "--project", str(self.root)], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    p = Project(tmp_path)
    for key in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_HOME", "PULUMI_SKIP_UPDATE_CHECK",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "PATH"):
        monkeypatch.setenv(key, p.env[key])  # the in-process Automation API runs `pulumi` with these
    monkeypatch.delenv(ENV, raising=False)
    p.write("dev", stack_yaml("dev"))
    assert p.pulumi("dev", "stack", "init").returncode == 0
    p.up("dev")
    yield p


def test_the_fake_reads_previous_outputs_as_the_real_engine_gives_them(tmp_path: Path,
                                                                         project: Project) -> None:
    # A probe program exports a value with nulls and integers, then what it reads back of it.
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "Pulumi.yaml").write_text(f"name: probe\nruntime:\n  name: python\n  options:\n    virtualenv: "
                                       f"{sys.prefix}\n")
    (probe / "__main__.py").write_text(
        "import json, pulumi\n"
        "from infra.progress import READ_OUTPUTS\n"
        "from pulumi.runtime import invoke\n"
        "name = f'{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}'\n"
        "seen = invoke(READ_OUTPUTS, {'name': name}).value['outputs']\n"
        "pulumi.export('value', {'a': None, 'b': {'c': 1, 'd': None, 'e': True}, 'f': [1, 'x']})\n"
        "pulumi.export('seen', json.dumps(seen.get('value'), sort_keys=True))\n")
    for args in (("stack", "init", "probe"), ("up", "--yes", "--skip-preview"), ("up", "--yes", "--skip-preview")):
        done = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=probe, env=project.env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    done = subprocess.run(["pulumi", "stack", "output", "--json"], cwd=probe, env=project.env, capture_output=True,
                          text=True, timeout=300)
    out = json.loads(done.stdout)
    # `pulumi stack output` (the target's view) keeps nulls and integers; a program reads them as the fake says.
    assert out["value"] == {"a": None, "b": {"c": 1, "d": None, "e": True}, "f": [1, "x"]}
    assert json.loads(out["seen"]) == program_view(out["value"])


def test_a_b_d_an_outside_up_changes_nothing_during_or_after_a_rollout(project: Project) -> None:
    checkout = (project.root / "stacks" / "Pulumi.dev.yaml").read_text()
    before = project.web()
    assert (before.image, before.canary_image, before.desired_image, before.rollout) == (V1, None, V1, None)
    outside: list[int] = []

    class OutsideUpAtEachStep:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            seen = project.outputs("dev")
            project.up("dev", expect_no_changes=True)  # (b): the engine itself finds nothing to change
            assert project.outputs("dev") == seen
            outside.append(int(seen["services"]["web"]["canaryWeight"]))  # type: ignore[index]
            return FakeAnalysis([Verdict.PASS]).analyse(ctx)

    from infra.rollout.pulumi_target import PulumiStackTarget

    target = PulumiStackTarget("dev", "web", project.root, Strategy.CANARY,
                               checkpoint_dir=project.root / ".gantry" / "checkpoints")
    clock = FakeClock()
    db = journal_path(project.root)
    journal = SqliteJournal(db)
    agreement = Agreement(project.root, project.web, V1, project.env)  # (d), after every step
    engine = Engine(target=target, analysis=OutsideUpAtEachStep(), journal=journal, lock=SqliteLock(db, clock),
                    clock=clock, observer=agreement)
    try:
        outcome = engine.start(stack=StackName("dev"), service="web", image=V2,
                               plan=canary_plan([10, 50, 100], interval=0.0, threshold=1))
    finally:
        journal.close()
    assert outcome.phase is Phase.PROMOTED and outcome.verified, outcome.reason
    assert outside == [10, 50, 100]
    assert agreement.problems == [] and len(agreement.checked) >= 5, agreement.checked
    # (a): the rollout wrote nothing, so the checkout is the one `main` has; an up from it changes nothing.
    assert (project.root / "stacks" / "Pulumi.dev.yaml").read_text() == checkout
    promoted = project.outputs("dev")
    project.up("dev", expect_no_changes=True)
    assert project.outputs("dev") == promoted
    web = project.web()
    assert (web.image, web.canary_image, web.rollout and web.rollout.state) == (V2, None, RolloutState.PROMOTED)


def test_c_a_pr_is_staged_by_a_plain_up_then_rolled_out_without_image_then_promoted_to_prod(
        project: Project) -> None:
    project.write("dev", stack_yaml("dev", V2))  # the pull request, merged
    project.up("dev")
    staged = project.web()
    assert (staged.image, staged.canary_image, staged.canary_weight, staged.rollout) == (V1, V2, 0, None)
    project.up("dev", expect_no_changes=True)  # staged once; the next plain up waits like the first

    done = project.gantry("rollout", "start", "--stack", "dev", "--service", "web", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert (last["phase"], last["verified"]) == ("promoted", True)
    status = gantry_status(project.root, str(last["rollout"]), project.env)
    assert (status["image"], status["phase"]) == (V2, "promoted")  # (d) at the end, through both CLIs
    web = project.web()
    assert (web.image, web.canary_image, web.canary_weight) == (V2, None, 0)
    project.up("dev", expect_no_changes=True)  # (a) for the GitOps flow

    # gantry promote: prod gets what dev runs and verified.
    project.write("prod", stack_yaml("prod"))
    assert project.pulumi("prod", "stack", "init").returncode == 0
    project.up("prod")
    done = project.gantry("promote", "--from", "dev", "--to", "prod", "--service", "web", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert project.web("prod").image == V2
    project.up("prod", expect_no_changes=True)

    # A failing canary on dev: rolled back, and promote refuses in one line with exit 2.
    project.write("dev", stack_yaml("dev", V3))
    project.up("dev")
    project.env["GATE_VALUE"] = "0.5"
    done = project.gantry("rollout", "start", "--stack", "dev", "--service", "web", "--json")
    project.env.pop("GATE_VALUE")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    project.up("dev", expect_no_changes=True)  # the rolled-back version is not staged again
    refused = project.gantry("promote", "--from", "dev", "--to", "prod", "--service", "web")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "dev's last rollout of web (ghcr.io/acme/web:1.2" in refused.stderr and "rolled" in refused.stderr
    assert project.web("prod").image == V2


def test_c_direct_delivery_serves_the_change_at_once(project: Project) -> None:
    project.write("dev", stack_yaml("dev", V2, ", delivery: direct"))
    project.up("dev")
    web = project.web()
    assert (web.image, web.canary_image, web.delivery.value) == (V2, None, "direct")
    previous = copy.deepcopy(project.outputs("dev"))
    project.up("dev", expect_no_changes=True)
    assert project.outputs("dev") == previous
