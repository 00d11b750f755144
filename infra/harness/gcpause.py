"""The one GC pause: the CLI's command registration, the offline commands and the render harness all use it.

Standard library only, so the render harness can import it inside a project's own interpreter.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused(resume: bool = True) -> Iterator[None]:
    """Pause the cyclic GC while a program imports its provider SDKs and registers resources.

    Importing pulumi_aws/pulumi_kubernetes builds thousands of classes; the collector runs hundreds of
    times during that and finds almost nothing (about a fifth of a cold render's CPU). Reference
    counting still frees memory; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled and resume:
            gc.enable()
