"""`gantry report kpis`: delivery KPIs from the rollout journal, in text, JSON, Markdown, OpenMetrics or HTML.

Thin: reads the journal (never creating one), calls ``infra.rollout.kpis.compute`` and renders with
``infra.rollout.kpi_formats``. Exit codes: 0 report written, 2 bad input.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from infra.commands.common import emit_json, fail, out
from infra.errors import GantryError, InputError


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    PROMETHEUS = "prometheus"
    HTML = "html"


def write_atomically(path: Path, body: str) -> None:
    """Write then rename, so a textfile collector or a browser never reads half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    """Add ``gantry report ...``."""
    report = typer.Typer(name="report", no_args_is_help=True, help="Reports computed from the rollout journal.")
    app.add_typer(report, name="report")

    @report.command("kpis")
    def kpis(
        stack: Annotated[str | None, typer.Option("--stack", "-s", help="Only this stack.")] = None,
        service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
        since: Annotated[str, typer.Option("--since", help="Look-back (30d, 12h, 2w, 90m) or an ISO 8601 date.")]
        = "30d",
        fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = ReportFormat.TEXT,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (atomically) "
                                                                          "instead of stdout.")] = None,
        project: Annotated[Path, typer.Option("--project", "-p", help="Project directory (.gantry/).")] = Path("."),
        as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    ) -> None:
        """DORA metrics and the seed's success metrics per stack, per service and overall, each beside its
        target with met or missed."""
        from infra.rollout import kpi_formats
        from infra.rollout import kpis as kpi
        from infra.rollout.journal import SqliteJournal, journal_path

        fmt = ReportFormat.JSON if as_json else fmt
        now = time.time()
        try:
            start = kpi.parse_since(since, now)
        except ValueError as exc:
            fail(InputError(str(exc)))
        path = journal_path(project)
        facts: list[kpi.RolloutFacts] = []
        if path.is_file():  # a report never creates a journal
            try:
                journal = SqliteJournal(path)
            except GantryError as exc:  # e.g. a journal written by a newer gantry
                fail(exc)
            try:
                facts = kpi.load(journal)
            finally:
                journal.close()
        result = kpi.compute(facts, since=start, until=now, stack=stack, service=service)
        match fmt:
            case ReportFormat.TEXT:
                if output is None:
                    from infra.console import fit

                    fit(out, kpi_formats.text(result))
                    return
                import io

                from infra.console import make_console

                buffer = io.StringIO()
                make_console(file=buffer, width=120, color_system=None).print(kpi_formats.text(result))
                body = buffer.getvalue()
            case ReportFormat.JSON:
                if output is None:
                    emit_json(kpi_formats.as_json(result, generated_at=now))
                    return
                import json

                body = json.dumps(kpi_formats.as_json(result, generated_at=now), indent=2) + "\n"
            case ReportFormat.MARKDOWN:
                body = kpi_formats.markdown(result)
            case ReportFormat.PROMETHEUS:
                body = kpi_formats.openmetrics(result)
            case ReportFormat.HTML:
                body = kpi_formats.html_page(result, generated_at=now)
        if output is None:
            sys.stdout.write(body)
        else:
            write_atomically(output, body)
