"""Commit provenance: flags, then the CI's variables, then git; malformed values are refused, naming their source."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from infra.errors import ExitCode, InputError
from infra.rollout.provenance import UNKNOWN, Provenance, Source, resolve

NOW = 1_800_000_000.0
SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


class FakeGit:
    """Answers ``git rev-parse HEAD`` and ``git log -1 --format=%ct <sha>`` from a table; records calls."""

    def __init__(self, head: str | None = None, times: dict[str, int] | None = None) -> None:
        self.head, self.times = head, times or {}
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], cwd: Path) -> str | None:
        self.calls.append(list(args))
        if list(args) == ["rev-parse", "HEAD"]:
            return self.head
        if args[0] == "log":
            t = self.times.get(args[3])
            return None if t is None else str(t)
        return None


def res(commit: str | None = None, committed_at: str | None = None, env: dict[str, str] | None = None,
        git: FakeGit | None = None) -> Provenance:
    return resolve(commit=commit, committed_at=committed_at, env=env or {}, project=Path("."), now=NOW,
                   git=git or FakeGit())


def test_flags_win_over_ci_and_git() -> None:
    git = FakeGit(head=OTHER, times={OTHER: 1})
    env = {"GITHUB_SHA": OTHER, "CI_COMMIT_SHA": OTHER, "CI_COMMIT_TIMESTAMP": "2020-01-01T00:00:00Z"}
    got = res(SHA.upper(), "2026-12-02T08:00:00Z", env, git)
    assert got == Provenance(commit=SHA, committed_at=1_796_198_400.0, source=Source.FLAG)
    assert git.calls == []


def test_commit_flag_without_time_takes_the_time_from_git() -> None:
    assert res(SHA, git=FakeGit(times={SHA: 1_700_000_000})).committed_at == 1_700_000_000.0
    assert res(SHA).committed_at is None  # git does not know it: recorded without a commit time


def test_epoch_seconds_are_accepted() -> None:
    assert res(SHA, "1700000000").committed_at == 1_700_000_000.0


def test_github_sha_takes_its_time_from_the_checkout() -> None:
    got = res(env={"GITHUB_SHA": SHA, "CI_COMMIT_SHA": OTHER}, git=FakeGit(times={SHA: 1_700_000_123}))
    assert got == Provenance(commit=SHA, committed_at=1_700_000_123.0, source=Source.GITHUB)


def test_gitlab_sha_and_timestamp() -> None:
    got = res(env={"CI_COMMIT_SHA": SHA, "CI_COMMIT_TIMESTAMP": "2026-12-02T09:00:00+01:00"})
    assert got == Provenance(commit=SHA, committed_at=1_796_198_400.0, source=Source.GITLAB)


def test_git_head_of_the_project_last() -> None:
    got = res(git=FakeGit(head=SHA, times={SHA: 1_700_000_000}))
    assert got == Provenance(commit=SHA, committed_at=1_700_000_000.0, source=Source.GIT)


def test_nothing_known_is_recorded_as_unknown() -> None:
    assert res() == UNKNOWN
    assert res(env={"GITHUB_SHA": ""}) == UNKNOWN  # an empty variable is no source


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"commit": "not-a-sha"}, "--commit must be a hex commit SHA"),
    ({"commit": "abc12"}, "--commit must be a hex commit SHA"),
    ({"commit": "[red]x[/red]"}, "--commit must be a hex commit SHA"),
    ({"commit": SHA, "committed_at": "yesterday"}, "--committed-at must be an ISO 8601"),
    ({"commit": SHA, "committed_at": "2026-12-02T08:00:00"}, "--committed-at must be an ISO 8601"),  # no offset
    ({"committed_at": "2026-12-02T08:00:00Z"}, "--commit must be given with --committed-at"),
    ({"commit": SHA, "committed_at": "2030-01-01T00:00:00Z"}, "--committed-at must not be in the future"),
    ({"env": {"GITHUB_SHA": "v1.2.3"}}, "GITHUB_SHA must be a hex commit SHA"),
    ({"env": {"CI_COMMIT_SHA": SHA, "CI_COMMIT_TIMESTAMP": "soon"}}, "CI_COMMIT_TIMESTAMP must be an ISO 8601"),
])
def test_malformed_values_are_input_errors_naming_their_source(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        res(**kwargs)
    assert str(info.value).startswith(field)
    assert "\n" not in str(info.value)
    assert info.value.exit_code is ExitCode.USAGE


def test_a_future_git_commit_time_is_refused_with_the_fix() -> None:
    with pytest.raises(InputError, match=r"the git commit time of 0123456789ab must not be in the future.*--committed"):
        res(git=FakeGit(head=SHA, times={SHA: int(NOW) + 3600}))
    # Within the tolerance for clock skew it is accepted.
    assert res(git=FakeGit(head=SHA, times={SHA: int(NOW) + 60})).committed_at == NOW + 60


def test_real_git_in_the_project(tmp_path: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
           "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("commit", "-qm", "m")
    head = git("rev-parse", "HEAD")
    got = resolve(commit=None, committed_at=None, env={}, project=tmp_path, now=NOW)
    # The commit time, not the author time: that is when the change entered the branch.
    assert got == Provenance(commit=head, committed_at=1_767_323_045.0, source=Source.GIT)
    # A directory that is not a repository: nothing known, no error.
    assert resolve(commit=None, committed_at=None, env={}, project=tmp_path / "nowhere", now=NOW) == UNKNOWN
