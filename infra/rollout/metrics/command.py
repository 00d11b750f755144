"""Command provider: runs an argv (never a shell) that prints a number, with a timeout.

Registers the ``command`` metrics backend; lets teams plug any script in as a metric.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from infra import registry
from infra.errors import InputError
from infra.rollout.argv import Timeout, run_argv
from infra.rollout.backends import MetricsContext, MetricsSource
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.seams import MetricQuery, MetricsProvider, Sample
from infra.settings.rollout import Duration

OUTPUT_LIMIT = 200


class CommandProvider:
    """``query.expr`` is an argv written as a string (split with shlex, not run by a shell), or ``argv`` is fixed.

    The command's last non-empty stdout line must be a number. Several whitespace-separated numbers
    on that line are observations (their mean is the value). Exit status other than 0 is no data.
    """

    name = "command"

    def __init__(self, argv: Sequence[str] | None = None, timeout: float = 30.0,
                 env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        if timeout <= 0:
            raise InputError(f"timeout must be positive, but {timeout} was given")
        self.argv = list(argv) if argv else None
        self.timeout = timeout
        self.env = dict(env) if env is not None else None
        self.cwd = cwd

    def _argv(self, query: MetricQuery) -> list[str]:
        argv = shlex.split(query.expr) if query.expr else self.argv
        if not argv:
            raise InputError(f"command metric {query.name} expr must be a command line, but {query.expr!r} was given")
        return argv

    def query(self, query: MetricQuery) -> Sample:
        argv = self._argv(query)
        try:
            done = run_argv(argv, timeout=self.timeout, env=self.env, cwd=self.cwd)
        except Timeout as exc:
            raise MetricsUnavailable(f"{argv[0]}: timed out after {self.timeout:g}s") from exc
        except OSError as exc:
            raise MetricsUnavailable(f"{argv[0]}: cannot run ({exc.strerror})") from exc
        if done.returncode != 0:
            tail = done.stderr.strip()[-OUTPUT_LIMIT:]
            raise MetricsUnavailable(f"{argv[0]}: exit status {done.returncode}: {tail}")
        lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
        if not lines:
            raise MetricsUnavailable(f"{argv[0]}: printed no number")
        try:
            numbers = [float(tok) for tok in lines[-1].split()]
        except ValueError as exc:
            raise MetricsUnavailable(
                f"{argv[0]}: last line must be a number, but {lines[-1][:OUTPUT_LIMIT]!r} was printed") from exc
        if any(math.isnan(n) or math.isinf(n) for n in numbers):
            return Sample(value=math.nan, count=0)
        if len(numbers) == 1:
            return Sample(value=numbers[0], count=1)
        return Sample(value=sum(numbers) / len(numbers), count=len(numbers), observations=tuple(numbers))

    def is_online(self) -> bool:
        """A fixed argv is online when its program can be found; per-query commands are checked when run."""
        if not self.argv:
            return True
        program = self.argv[0]
        return shutil.which(program) is not None if "/" not in program else os.access(program, os.X_OK)


@registry.METRICS.register
class CommandSettings(MetricsSource):
    """``rollout.metrics`` for commands: each gate's ``expr`` is an argv line whose last stdout line is a number."""

    kind: Literal["command"] = "command"
    timeout: Duration = Field(default=Duration("30s"), description="Kill a gate's command after this. Default: 30s.")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        return CommandProvider(timeout=float(self.timeout))
