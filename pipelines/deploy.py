"""The delivery pipeline's commands, in one place: both CI pipelines and tests/pipelines run exactly these.

``.github/workflows/delivery.yml`` and ``.gitlab-ci.yml`` call one stage per job, from the checkout, with
the project's virtualenv first on PATH::

    python -m pipelines.deploy test                                   # build job: lint, types, the test suite
    python -m pipelines.deploy wheel                                  # build job: dist/gantry-*.whl
    python -m pipelines.deploy check --reports reports                # security job: SARIF, Markdown, JUnit
    python -m pipelines.deploy gitlab-note --body reports/gantry.md   # GitLab: the report as an MR note
    python -m pipelines.deploy deploy --stack staging --service web --image IMG   # rollout + its verification
    python -m pipelines.deploy promote --from staging --to prod --service web     # after the manual approval

Each stage is a list of argv commands run without a shell, in order, stopping at the first that fails; the
stage exits with that command's code, so a job fails exactly when its command does (rollout's codes: 0
promoted, 1 rolled back, 2 usage or input error, 3 stack locked, 4 rollback failed). ``--dry-run`` prints the
commands instead of running them.

Rollback verification is part of ``deploy`` and ``promote``, because a rollout's journal lives in the job's
workspace: after ``gantry rollout start`` it reads the rollout's outcome line (the engine's end check of what
users see: the stable version answers real requests, the target matches the journal) and the journal's own
replay of that rollout (``gantry rollout status``). A promoted rollout must be verified; a rolled-back one
must have restored the stable version, and the stage still exits 1 so the pipeline stops before prod. An
outcome that is missing, unverified or contradicts the journal exits 4: an operator must look.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

OK, ROLLED_BACK, USAGE, LOCKED, OPERATOR = 0, 1, 2, 3, 4
"""Exit codes, the same as ``gantry rollout``'s."""

REPORTS = Path("reports")

Argv = list[str]
Echo = Callable[[str], None]


def _echo(line: str) -> None:
    print(line, flush=True)


def run(argv: Sequence[str], *, tee: Path | None = None, echo: Echo = _echo, capture: bool = False,
        cwd: Path | None = None) -> tuple[int, str]:
    """Run ``argv`` (no shell), stream its output, and return (exit code, stdout).

    With ``tee`` its stdout is also written to that file (the deploy jobs keep it as an artifact); with
    ``capture`` it is returned without being printed.
    """
    echo(f"pipeline: $ {shlex.join(argv)}")
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, text=True, cwd=cwd)
    except OSError as exc:
        echo(f"pipeline: cannot run {argv[0]}: {exc.strerror}")
        return USAGE, ""
    assert proc.stdout is not None
    lines: list[str] = []
    sink = tee.open("w", encoding="utf-8") if tee is not None else None
    try:
        for line in proc.stdout:
            lines.append(line)
            if sink is not None:
                sink.write(line)
                sink.flush()
            if not capture:
                sys.stdout.write(line)
                sys.stdout.flush()
    finally:
        if sink is not None:
            sink.close()
    return proc.wait(), "".join(lines)


# --- the commands of each stage (pure: the dry run and the tests read them) ---------------------------------

def test_commands() -> list[Argv]:
    """Build job: the project's own CI (set-up, ruff, mypy --strict, workflow/Dockerfile lint, pytest)."""
    return [["bash", ".ci/run"]]


def wheel_commands(python: str = sys.executable, out: str = "dist") -> list[Argv]:
    """Build job: the wheel the image installs (the Dockerfile's builder stage runs the same pip wheel)."""
    return [[python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, "."]]


def check_commands(reports: Path = REPORTS) -> list[Argv]:
    """Security job: ``gantry check`` as SARIF (code scanning), Markdown (the PR comment) and JUnit (gating)."""
    base = ["gantry", "check", "--all-stacks", "--checkov", "on"]
    return [[*base, "--format", "sarif", "--output", str(reports / "gantry.sarif")],
            [*base, "--format", "markdown", "--output", str(reports / "gantry.md")],
            [*base, "--format", "junit", "--output", str(reports / "gantry-junit.xml")]]


def rollout_command(stack: str, service: str, image: str) -> Argv:
    return ["gantry", "rollout", "start", "--stack", stack, "--service", service, "--image", image, "--json"]


def promote_command(source: str, dest: str, service: str) -> Argv:
    return ["gantry", "promote", "--from", source, "--to", dest, "--service", service]


def rollout_log(reports: Path, stack: str, service: str) -> Path:
    return reports / f"rollout-{stack}-{service}.jsonl"


# --- rollback verification (pure) --------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """What the verification concluded: the stage's exit code and one line saying why."""

    code: int
    message: str


def outcome_of(stdout: str) -> dict[str, object] | None:
    """The last ``{"event": "outcome", ...}`` line of ``gantry rollout start --json``, if any."""
    found: dict[str, object] | None = None
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event") == "outcome":
            found = doc
    return found


def verify_rollout(exit_code: int, outcome: dict[str, object] | None, journal_phase: str | None) -> Verdict:
    """Rollback verification of one ``gantry rollout start``: does its end state hold, and agree with the journal?

    Exit 0 needs a verified promotion; exit 1 a verified rollback (the stage keeps exit 1: the pipeline must
    stop before prod). Codes 2 and 3 touched nothing and pass through. Anything else, or an outcome the
    journal contradicts, is 4.
    """
    if exit_code in (USAGE, LOCKED):
        return Verdict(exit_code, f"rollout did not run (exit {exit_code}); nothing to verify")
    if outcome is None:
        return Verdict(OPERATOR, f"rollout exited {exit_code} without an outcome line: check the target by hand")
    phase, verified = outcome.get("phase"), outcome.get("verified")
    rollout = outcome.get("rollout")
    if journal_phase is not None and journal_phase != phase:
        return Verdict(OPERATOR, f"rollout {rollout} reported {phase} but its journal replays {journal_phase}")
    mismatches = outcome.get("mismatches") or []
    if verified is not True:
        return Verdict(OPERATOR, f"rollout {rollout} ended {phase} but the target does not match: {mismatches}")
    if exit_code == OK and phase == "promoted":
        return Verdict(OK, f"rollout {rollout} promoted and verified: the new version serves")
    if exit_code == ROLLED_BACK and phase == "rolled_back":
        return Verdict(ROLLED_BACK, f"rollback verified: rollout {rollout} rolled back and the stable version "
                                    "serves; stopping before prod")
    return Verdict(OPERATOR, f"rollout {rollout} exited {exit_code} with phase {phase}: an operator must act")


def journal_phase(rollout: object, echo: Echo) -> str | None:
    """The rollout's phase as the journal replays it (``gantry rollout status --json``), or None if unreadable."""
    if not isinstance(rollout, str) or not rollout:
        return None
    code, out = run(["gantry", "rollout", "status", rollout, "--json"], capture=True, echo=echo)
    if code != 0:
        return None
    try:
        doc = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    phase = doc.get("phase") if isinstance(doc, dict) else None
    return phase if isinstance(phase, str) else None


def newest_rollout(history_stdout: str, service: str) -> dict[str, object] | None:
    """The newest record of ``service`` in ``gantry rollout history --json`` (newest first)."""
    for line in history_stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("service") == service:
            return doc
    return None


def verify_promotion(exit_code: int, record: dict[str, object] | None, *, already: bool = False) -> Verdict:
    """Verification after ``gantry promote``: the prod stack's newest rollout of the service must match its exit.

    ``already``: promote said the destination already runs the version (a rerun of the job), so no rollout ran.
    """
    if exit_code in (USAGE, LOCKED):
        return Verdict(exit_code, f"promote did not run a rollout (exit {exit_code})")
    if exit_code == OK and already:
        return Verdict(OK, "the destination already runs the verified version: nothing to promote")
    if record is None:
        return Verdict(OPERATOR, f"promote exited {exit_code} but the journal holds no rollout of the service")
    want = {OK: "promoted", ROLLED_BACK: "rolled_back"}.get(exit_code)
    if want is None or record.get("phase") != want:
        return Verdict(OPERATOR, f"promote exited {exit_code} but rollout {record.get('rollout')} is "
                                 f"{record.get('phase')}: an operator must act")
    if exit_code == OK:
        return Verdict(OK, f"rollout {record.get('rollout')} of {record.get('image')} promoted")
    return Verdict(ROLLED_BACK, f"rollback verified: rollout {record.get('rollout')} rolled back")


# --- stages ------------------------------------------------------------------------------------------------

def staged_image(stack: str, service: str) -> str:
    """The image the stack file names for ``service`` (what the merged pull request set)."""
    from infra import plugins
    from infra.config import load_stack
    from infra.errors import GantryError

    plugins.load()  # the stack's backends validate against what is registered
    try:
        config = load_stack(stack, Path("stacks"))
    except (GantryError, OSError, ValueError) as exc:
        raise SystemExit(_usage(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    if service not in config.services:
        raise SystemExit(_usage(f"--service must be a service of stack {stack} "
                                f"({', '.join(sorted(config.services))}), but {service!r} was given"))
    return config.services[service].image


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return USAGE


def run_all(commands: list[Argv], dry_run: bool, echo: Echo = _echo) -> int:
    for argv in commands:
        if dry_run:
            echo(shlex.join(argv))
            continue
        code, _ = run(argv, echo=echo)
        if code != 0:
            return code
    return OK


def stage_check(reports: Path, dry_run: bool, echo: Echo = _echo) -> int:
    """All three reports are written whatever the findings; the SARIF run's exit code gates the job."""
    commands = check_commands(reports)
    if dry_run:
        return run_all(commands, True, echo)
    reports.mkdir(parents=True, exist_ok=True)
    codes = [run(argv, echo=echo)[0] for argv in commands]
    return codes[0] if codes[0] != 0 else max(codes)


def stage_deploy(stack: str, service: str, image: str, reports: Path, dry_run: bool, echo: Echo = _echo) -> int:
    image = image or staged_image(stack, service)
    argv = rollout_command(stack, service, image)
    if dry_run:
        echo(shlex.join(argv))
        return OK
    reports.mkdir(parents=True, exist_ok=True)
    code, out = run(argv, tee=rollout_log(reports, stack, service), echo=echo)
    outcome = outcome_of(out)
    phase = journal_phase(outcome.get("rollout") if outcome else None, echo)
    verdict = verify_rollout(code, outcome, phase)
    echo(f"pipeline: rollback verification: {verdict.message}")
    return verdict.code


def stage_promote(source: str, dest: str, service: str, dry_run: bool, echo: Echo = _echo) -> int:
    argv = promote_command(source, dest, service)
    if dry_run:
        echo(shlex.join(argv))
        return OK
    code, said = run(argv, echo=echo)
    _, history = run(["gantry", "rollout", "history", "--stack", dest, "--json"], capture=True, echo=echo)
    verdict = verify_promotion(code, newest_rollout(history, service), already="nothing to promote" in said)
    echo(f"pipeline: rollback verification: {verdict.message}")
    return verdict.code


NOTE_TOKEN = "GANTRY_MR_NOTE_TOKEN"
"""A GitLab project access token (api scope) for merge request notes; CI_JOB_TOKEN cannot write notes."""


def stage_gitlab_note(body: Path, echo: Echo = _echo) -> int:
    """Post ``body`` as a note on the pipeline's merge request; skipped (exit 0) outside one or without a token."""
    import httpx

    env = os.environ
    names = ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", NOTE_TOKEN)
    missing = [n for n in names if not env.get(n)]
    if missing or not body.is_file():
        echo(f"pipeline: merge request note skipped ({', '.join(missing) or str(body)} not set)")
        return OK
    url = f"{env['CI_API_V4_URL']}/projects/{env['CI_PROJECT_ID']}/merge_requests/{env['CI_MERGE_REQUEST_IID']}/notes"
    try:
        response = httpx.post(url, json={"body": body.read_text(encoding="utf-8")},
                              headers={"PRIVATE-TOKEN": env[NOTE_TOKEN]}, timeout=30)
    except httpx.HTTPError as exc:
        echo(f"pipeline: merge request note failed: {type(exc).__name__}")  # never the token or the URL's query
        return 1
    echo(f"pipeline: merge request note: HTTP {response.status_code}")
    return OK if response.is_success else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.deploy", description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="Print the commands instead of running them.")
    sub = p.add_subparsers(dest="stage", required=True)
    sub.add_parser("test", help="lint, types and the test suite (.ci/run)")
    sub.add_parser("wheel", help="build dist/gantry-*.whl")
    check = sub.add_parser("check", help="gantry check: SARIF, Markdown and JUnit reports")
    check.add_argument("--reports", type=Path, default=REPORTS)
    note = sub.add_parser("gitlab-note", help="post a report as a note on the GitLab merge request")
    note.add_argument("--body", type=Path, required=True)
    deploy = sub.add_parser("deploy", help="gantry rollout start, then rollback verification")
    deploy.add_argument("--stack", required=True)
    deploy.add_argument("--service", required=True)
    deploy.add_argument("--image", default="", help="Default (or empty): the image the stack file names.")
    deploy.add_argument("--reports", type=Path, default=REPORTS)
    promote = sub.add_parser("promote", help="gantry promote, then verification of the prod rollout")
    promote.add_argument("--from", dest="source", required=True)
    promote.add_argument("--to", dest="dest", required=True)
    promote.add_argument("--service", required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in ("stack", "service", "source", "dest"):
        value = getattr(args, name, None)
        if value is not None and not value.strip():
            # An unset CI variable expands to "": say which one instead of letting gantry guess.
            return _usage(f"--{'from' if name == 'source' else 'to' if name == 'dest' else name} must be "
                          "non-empty, but an empty value was given; set the pipeline variable")
    if args.stage == "test":
        return run_all(test_commands(), args.dry_run)
    if args.stage == "wheel":
        return run_all(wheel_commands(), args.dry_run)
    if args.stage == "check":
        return stage_check(args.reports, args.dry_run)
    if args.stage == "gitlab-note":
        return OK if args.dry_run else stage_gitlab_note(args.body)
    if args.stage == "deploy":
        return stage_deploy(args.stack, args.service, args.image, args.reports, args.dry_run)
    return stage_promote(args.source, args.dest, args.service, args.dry_run)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
