"""Commit provenance of a rollout: which commit it deploys and when that commit was made.

``gantry rollout start`` calls ``resolve`` before anything is touched; the engine stores the result on
the rollout's journal row, and ``infra.rollout.kpis`` measures lead time from it. Sources, first match
wins: the ``--commit`` / ``--committed-at`` flags, then the CI's standard variables (``GITHUB_SHA``,
``CI_COMMIT_SHA`` with ``CI_COMMIT_TIMESTAMP``), then ``git`` in the project. A commit whose time is
unknown is recorded without one (lead time then skips it and says so); a malformed value is an input
error naming its source, never silently dropped.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from infra.errors import InputError

_SHA = re.compile(r"[0-9a-f]{7,64}")
FUTURE_TOLERANCE = 300.0
"""Seconds a commit time may lie ahead of the engine clock (clock skew between machines)."""
GIT_TIMEOUT = 10.0


class Source(StrEnum):
    """Where a rollout's commit came from."""

    FLAG = "flag"
    GITHUB = "GITHUB_SHA"
    GITLAB = "CI_COMMIT_SHA"
    GIT = "git"


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """The commit a rollout deploys. Default: nothing known (an old journal row, or no source found)."""

    commit: str | None = None
    """Lower-case hex SHA (7..64 digits). Default: None, unknown."""
    committed_at: float | None = None
    """Commit time, epoch seconds. Default: None, unknown (lead time skips the rollout)."""
    source: Source | None = None
    """Which source supplied ``commit``. Default: None."""


UNKNOWN = Provenance()
"""No commit known: rollouts journaled before provenance existed, or started where no source names one."""

GitRunner = Callable[[Sequence[str], Path], str | None]
"""Runs ``git <args>`` in a directory; returns stripped stdout, or None when git is absent or fails."""


def run_git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def parse_sha(value: str, field: str) -> str:
    sha = value.strip().lower()
    if not _SHA.fullmatch(sha):
        raise InputError(f"{field} must be a hex commit SHA of 7 to 64 digits, but {value[:80]!r} was given")
    return sha


def parse_time(value: str, field: str) -> float:
    """ISO 8601 with a UTC offset (``2026-12-02T08:00:00Z``) or epoch seconds."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
            return float(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InputError(f"{field} must be an ISO 8601 time with a UTC offset (e.g. 2026-12-02T08:00:00Z) or "
                         f"epoch seconds, but {value[:80]!r} was given")
    return parsed.timestamp()


def _git_time(sha: str, project: Path, git: GitRunner) -> float | None:
    out = git(["log", "-1", "--format=%ct", sha, "--"], project)
    return float(out) if out and out.isdigit() else None


def resolve(*, commit: str | None, committed_at: str | None, env: Mapping[str, str], project: Path, now: float,
            git: GitRunner = run_git) -> Provenance:
    """The rollout's commit and commit time, from the first source that names a commit."""
    if committed_at is not None and commit is None:
        raise InputError("--commit must be given with --committed-at, but only --committed-at was given")
    if commit is not None:
        sha, source = parse_sha(commit, "--commit"), Source.FLAG
        at = parse_time(committed_at, "--committed-at") if committed_at is not None else None
        where = "--committed-at"
    elif env.get("GITHUB_SHA"):
        # GitHub Actions has no commit-time variable; actions/checkout leaves the commit in the work tree.
        sha, source, at, where = parse_sha(env["GITHUB_SHA"], "GITHUB_SHA"), Source.GITHUB, None, "git"
    elif env.get("CI_COMMIT_SHA"):
        sha, source = parse_sha(env["CI_COMMIT_SHA"], "CI_COMMIT_SHA"), Source.GITLAB
        stamp = env.get("CI_COMMIT_TIMESTAMP")
        at = parse_time(stamp, "CI_COMMIT_TIMESTAMP") if stamp else None
        where = "CI_COMMIT_TIMESTAMP"
    else:
        head = git(["rev-parse", "HEAD"], project)
        if not head:
            return Provenance()
        sha, source, at, where = parse_sha(head, "git rev-parse HEAD"), Source.GIT, None, "git"
    if at is None:
        at = _git_time(sha, project, git)
        where = f"the git commit time of {sha[:12]}" if at is not None else where
    if at is not None and at > now + FUTURE_TOLERANCE:
        shown = datetime.fromtimestamp(at, UTC).isoformat()
        raise InputError(f"{where} must not be in the future, but {shown} was given; "
                         "fix the clock or pass --commit with --committed-at")
    return Provenance(commit=sha, committed_at=at, source=source)
