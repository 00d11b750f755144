"""Gantry's error tree and exit codes for the layers above ``components`` (defined in ``components.errors``).

Every error Gantry raises on purpose subclasses ``GantryError``; the CLI maps ``exit_code`` to the process's.
"""

from __future__ import annotations

from components.errors import ExitCode as ExitCode
from components.errors import GantryError as GantryError
from components.errors import InputError as InputError
from components.errors import PermanentError as PermanentError
from components.errors import ProgramError as ProgramError
from components.errors import TemporaryError as TemporaryError
