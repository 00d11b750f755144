"""Named fault points inside target operations, where the in-operation crash drill SIGKILLs gantry.

Targets (``HaproxyTarget``, ``PulumiStackTarget``) call ``point("<target>.<operation>.<effect>")`` right
after each single effect they make. Unarmed, which is the default and the only state a normal
``gantry`` run ever sees, a point does nothing but read two environment variables. The drill harness
(``tests/rollout/drills.py``, ``bench/rollout_kill.py``, the tests) arms exactly one point in the
environment of the process it starts:

- ``GANTRY_DRILL_KILL_POINT=<name>`` (or ``<name>#<n>`` for its n-th passage) SIGKILLs the process there;
- ``GANTRY_DRILL_TRACE=<file>`` appends the name of every point passed, so a reference run lists them.
"""

from __future__ import annotations

import os
import signal

ENV_KILL_POINT = "GANTRY_DRILL_KILL_POINT"
ENV_TRACE = "GANTRY_DRILL_TRACE"

_passed: dict[str, int] = {}


def point(name: str) -> None:
    """Mark that the effect ``name`` has just happened; die here if the drill armed this point."""
    trace = os.environ.get(ENV_TRACE)
    armed = os.environ.get(ENV_KILL_POINT)
    if not trace and not armed:
        return
    _passed[name] = count = _passed.get(name, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{name}\n")
    if armed:
        want, _, nth = armed.partition("#")
        if want == name and count == (int(nth) if nth.isdigit() else 1):
            os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Forget how often each point was passed (a forked drill child starts counting afresh)."""
    _passed.clear()
