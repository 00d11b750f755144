"""Automation API errors are translated in one place: locked, not found, command failed with a masked tail."""

from __future__ import annotations

import pytest
from fake_automation import cli_error, lock_stderr, not_found_stderr
from pulumi.automation.errors import CommandError, ConcurrentUpdateError, StackNotFoundError

from infra.errors import ExitCode, GantryError
from infra.rollout.automation_errors import call, stderr_tail, translate
from infra.rollout.errors import CommandFailed, StackLocked, StackNotFound


def test_the_fake_produces_the_real_error_classes() -> None:
    assert type(cli_error(lock_stderr("dev", "a", "h", 1))) is ConcurrentUpdateError
    assert type(cli_error(not_found_stderr("dev"))) is StackNotFoundError
    assert type(cli_error("error: something else")) is CommandError


def test_concurrent_update_is_stack_locked_exit_3() -> None:
    err = translate(cli_error(lock_stderr("prod", "dana", "ci-7", 321)), "prod", "up")
    assert isinstance(err, StackLocked) and err.exit_code == ExitCode.LOCKED
    assert (err.stack, err.holder, err.host, err.pid) == ("prod", "dana", "ci-7", 321)


def test_service_conflict_without_holder_still_locked() -> None:
    err = translate(cli_error("error: [409] Conflict: Another update is currently in progress."), "prod", "up")
    assert isinstance(err, StackLocked) and "another pulumi update" in str(err)


def test_not_found_names_the_stack_and_the_fix() -> None:
    err = translate(cli_error(not_found_stderr("qa")), "qa", "select")
    assert isinstance(err, StackNotFound) and "pulumi stack init qa" in str(err)
    assert err.exit_code == ExitCode.USAGE


def test_command_error_keeps_only_a_masked_tail() -> None:
    stderr = "\n".join([f"line {i}" for i in range(100)] + ["error: token=abc123xyz denied; key sekrit-value"])
    err = translate(cli_error(stderr), "dev", "refresh", secrets=["sekrit-value"])
    assert isinstance(err, CommandFailed) and err.operation == "refresh"
    assert err.stderr_tail.count("\n") == 19 and "line 0\n" not in err.stderr_tail
    assert "abc123xyz" not in str(err) and "sekrit-value" not in str(err)


def test_stderr_tail_of_a_non_command_error_is_its_message() -> None:
    assert stderr_tail(OSError("pulumi: not found")) == "pulumi: not found"


def test_call_passes_results_and_translates_errors() -> None:
    assert call("dev", "outputs", lambda: 42) == 42

    def missing_cli() -> None:
        raise FileNotFoundError("No such file or directory: 'pulumi'")

    with pytest.raises(CommandFailed, match="the pulumi CLI must be on PATH, but it was not found"):
        call("dev", "up", missing_cli)

    def broken_output() -> None:
        raise ValueError("Expecting value: line 1 column 1")

    with pytest.raises(CommandFailed, match="ValueError: Expecting value"):
        call("dev", "outputs", broken_output)
    locked = StackLocked("dev", "x", "y", None, None)

    def already_translated() -> None:
        raise locked

    with pytest.raises(GantryError) as info:
        call("dev", "up", already_translated)
    assert info.value is locked
