"""Gantry's error tree and the CLI's stable exit codes; every layer raises these, the CLI maps them.

Errors are grouped by what the caller should do, as kopf does: fix the input, retry later, or call an operator.
"""

from __future__ import annotations

# The root of the tree lives in components/ (the lowest layer) so that SpecError can join it; re-exported here.
from components.errors import ExitCode, GantryError, InputError, PermanentError, TemporaryError

__all__ = ["ExitCode", "GantryError", "InputError", "PermanentError", "ProgramError", "TemporaryError"]


class ProgramError(PermanentError):
    """The Pulumi program itself raised."""
