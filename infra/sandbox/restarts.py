"""The sandbox's restart counts as a metrics provider: what the supervisor of each demo process recorded.

Built by ``HaproxyTarget.restart_counter`` for the rollout's restarts gate; ``query.expr`` names the demo
process (``app-<service>-<version>``). A process with no count (never started under a supervisor) is
missing data, which fails safe.
"""

from __future__ import annotations

import math
from pathlib import Path

from infra.rollout.seams import MetricQuery, Sample
from infra.sandbox.supervisor import read_count


class SandboxRestarts:
    """Restarts of one demo process, read from its supervisor's count file."""

    name = "sandbox-restarts"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def query(self, query: MetricQuery) -> Sample:
        count = read_count(self.directory / f"{query.expr}.restarts")
        if count is None:
            return Sample(value=math.nan, count=0)
        return Sample(value=float(count), count=1)

    def is_online(self) -> bool:
        return self.directory.is_dir()
