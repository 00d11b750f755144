"""Eight processes on one journal while writers are SIGKILLed: nothing acknowledged is lost, every abort holds.

Three engine processes run real rollouts (real engine, journal and lease; file targets; a clock whose
waits take milliseconds), three operators journal pause, resume and abort as the CLI does, and two
readers open, read and close as `status` does. Writers are SIGKILLed at random points of their work and
restarted (a restarted engine resumes what its predecessor left). See ``tests/rollout/stress.py``; the
figures for the record come from ``bench/journal_stress.py``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from stress import run


@pytest.fixture
def stress_dir(tmp_path: Path) -> Iterator[Path]:
    """tmpfs when there is one: a SIGKILL spares the page cache, so what survives a kill is the same, and the
    run skips thousands of fsyncs (bench/journal_stress.py runs on disk)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="gantry-stress-") as d:
        yield Path(d)


def test_eight_processes_with_kills_lose_no_acknowledged_write_and_honour_every_abort(stress_dir: Path) -> None:
    # Typically 20-30 s on the shared 2-core machine; the cut-off only bounds a pathologically slow one. Kills
    # are spaced (0.5-1.5 s) so that restarting interpreters does not eat the whole run under load.
    result = run(stress_dir / "run", engines=3, operators=3, readers=2, min_operations=1000, min_kills=10,
                 max_seconds=90.0, kill_gap=(0.5, 1.5), seed=10)
    assert result.problems == []
    assert result.processes >= 8
    assert result.operations >= 1000
    assert result.kills >= 10
    assert result.integrity == "ok"
    assert result.lost_writes == 0
    assert result.aborts_not_honoured == 0
    # The run exercised what it claims to: every operator action, aborts that rolled back, and promotions.
    assert set(result.operator_acknowledged) == {"pause", "resume", "abort"}
    assert result.aborts_acknowledged >= 1 and result.phases.get("rolled_back", 0) >= 1
    assert result.writes_acknowledged >= 100 and result.reads >= 100
    assert result.unverified == 0
