"""Renderers for ``gantry check`` results: text, JSON, SARIF 2.1.0, Markdown and JUnit XML."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports Format at start-up; the engine stays unloaded until a check runs
    from policies.engine import StackReport


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    MARKDOWN = "markdown"
    JUNIT = "junit"


def render(fmt: Format, reports: Sequence[StackReport]) -> str:
    """Render reports in one format; imports the renderer lazily."""
    renderer: Callable[[Sequence[StackReport]], str]
    if fmt is Format.JSON:
        from policies.report.json_report import render_json as renderer
    elif fmt is Format.SARIF:
        from policies.report.sarif import render_sarif as renderer
    elif fmt is Format.MARKDOWN:
        from policies.report.markdown import render_markdown as renderer
    elif fmt is Format.JUNIT:
        from policies.report.junit import render_junit as renderer
    else:
        from policies.report.text import render_text as renderer
    return renderer(reports)
