"""Rich renderings of results for people; pipelines use --format json instead."""

from __future__ import annotations

import json

from rich.table import Table

from infra.commands.common import out
from infra.console import fit, styled
from infra.render import STACK_TYPE, RenderResult


def render_tables(result: RenderResult) -> None:
    names = {r.urn: r.name for r in result.resources}
    partial = " (partial: the program raised)" if result.partial else ""
    table = Table(title=f"{result.project} / {result.stack}: resources{partial}", title_justify="left")
    for col in ("type", "name", "parent", "deps"):
        table.add_column(col, overflow="fold")  # a terminal folds long names; a pipe gets them whole (fit)
    for r in result.resources:
        if r.type == STACK_TYPE:
            continue
        parent = names.get(r.parent or "", "-") if r.parent else "-"
        table.add_row(r.type, r.name, parent, str(len(r.dependencies)))
    fit(out, table)
    outputs = Table(title="outputs", title_justify="left")
    outputs.add_column("name")
    outputs.add_column("value", overflow="fold")
    for key, value in sorted(result.outputs.items()):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        outputs.add_row(key, text if len(text) < 200 else text[:197] + "...")
    fit(out, outputs)
    summary = Table(title="summary by type", title_justify="left")
    summary.add_column("type")
    summary.add_column("count", justify="right")
    counts = result.summary()
    for typ, n in counts.items():
        summary.add_row(typ, str(n))
    summary.add_row(styled("[bold]total[/bold]"), styled("[bold]{}[/bold]", sum(counts.values())))
    fit(out, summary)
    for d in result.diagnostics:
        out.print(styled("[yellow]{}[/yellow]", d))
