"""The shape of a rendered stack as the policy engine reads it; ``infra.render.RenderResult`` matches it.

The renderer lives in a layer above ``policies``, so the engine types what it is handed with these protocols
instead of importing it (``gantry check`` renders in ``infra/commands/check.py`` and passes the result in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol


class RenderedLocation(Protocol):
    """Where the program constructed a resource (``infra.render.SourceLocation`` has this shape)."""

    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int: ...


class RenderedResource(Protocol):
    """One resource of a rendered graph, as the renderer (in the layer above) hands it in."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def dependencies(self) -> Sequence[str]: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def protect(self) -> bool: ...
    @property
    def ignore_changes(self) -> Sequence[str]: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def location(self) -> RenderedLocation | None: ...


class ProgramFailureLike(Protocol):
    """The program's own exception, when it raised after registering resources."""

    @property
    def location(self) -> RenderedLocation | None: ...
    @property
    def traceback(self) -> str: ...


class RenderedStack(Protocol):
    """A rendered stack (``infra.render.RenderResult`` has this shape); policies never import the renderer."""

    @property
    def project(self) -> str: ...
    @property
    def resources(self) -> Sequence[RenderedResource]: ...
    @property
    def stack_file(self) -> Path | None: ...
    @property
    def error(self) -> ProgramFailureLike | None: ...
    def error_message(self) -> str: ...
