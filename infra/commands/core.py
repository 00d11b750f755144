"""`gantry --version`, `gantry render` and `gantry stacks`: the offline view of any Pulumi Python project."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, cast

import typer

from infra.commands.common import Format, emit_json, err, fail, out, report_program_errors, short_lived
from infra.console import fit, styled

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Pulumi project directory (read through its Pulumi.yaml).")
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, json for pipelines.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def _version() -> str:
    try:
        return version("gantry")
    except PackageNotFoundError:
        return "0+unknown"


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"gantry {_version()}")
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    @app.callback()
    def root(
        show_version: Annotated[
            bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
        ] = False,
    ) -> None:
        """Gantry: secure Kubernetes platforms and progressive delivery on Pulumi.

        Exit codes: 0 ok; 1 findings or rolled back; 2 usage or input error; 3 stack locked;
        4 rollback failed (an operator must act).
        """

    @app.command()
    def render(
        stack: Annotated[
            list[str] | None, typer.Option("--stack", "-s", help="Stack name (stacks/Pulumi.<stack>.yaml); repeatable.")
        ] = None,
        all_stacks: Annotated[
            bool, typer.Option("--all-stacks", help="Render every stack, in parallel (one process per core).")
        ] = False,
        project: ProjectOpt = Path("."),
        fmt: FormatOpt = Format.TABLE,
        debug: Annotated[bool, typer.Option("--debug", help="On a program error, print its traceback.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Run the program under mocks (no CLI, credentials or network) and print its resource graph.

        A program that raises still prints every resource it registered; the error, with the file and
        line of the program, goes to stderr and the exit code is 2.
        """
        short_lived()
        from infra.errors import ExitCode, GantryError
        from infra.render import Project, render_stacks

        fmt = Format.JSON if as_json else fmt
        if all_stacks == bool(stack):
            err.print(styled("[red]error:[/red] pass --stack NAME (repeatable) or --all-stacks, not both"))
            raise typer.Exit(ExitCode.USAGE)
        try:
            names = Project.load(project).stacks() if all_stacks else list(dict.fromkeys(stack or []))
            results = render_stacks(project, names)
        except GantryError as exc:
            fail(exc)
        if fmt is Format.JSON:
            docs = [r.to_json() for r in results]
            emit_json(docs[0] if len(docs) == 1 and not all_stacks else {"stacks": docs})
        else:
            from infra.commands.views import render_tables

            for result in results:
                render_tables(result)
        report_program_errors(results, debug=debug)

    @app.command()
    def stacks(project: ProjectOpt = Path("."), fmt: FormatOpt = Format.TABLE, as_json: JsonFlag = False) -> None:
        """List the project's stacks with their cloud, tier and whether their config validates."""
        short_lived()
        from infra.config import ConfigError, namespace_values, parse, read_stack_file
        from infra.errors import GantryError
        from infra.render import Project

        try:
            proj = Project.load(project)
        except GantryError as exc:
            fail(exc)
        from infra.rollout.readiness import readiness

        if as_json:
            fmt = Format.JSON
        if not proj.stacks():
            from infra.errors import InputError

            fail(InputError(f"--project must hold stack files (Pulumi.<stack>.yaml in {proj.config_dir}), "
                            "but none was found"))
        rows: list[dict[str, object]] = []
        for name in proj.stacks():
            row: dict[str, object] = {"stack": name, "cloud": None, "tier": None, "valid": True, "error": None}
            problems: list[str] = ["the stack has no gantry: config to roll out"]
            try:
                sf = read_stack_file(name, proj.config_dir)
                values = namespace_values(sf.raw)
                row["cloud"], row["tier"] = values.get("cloud"), values.get("tier")
                if values:  # stacks of foreign projects carry no gantry:* config to validate
                    problems = readiness(parse(values, source=str(sf.path)))
            except ConfigError as exc:
                row["valid"], row["error"] = False, exc.problems[0] if exc.problems else str(exc)
                problems = [str(row["error"])]
            row["rollout"] = {"ready": not problems, "problems": problems}
            rows.append(row)
        if fmt is Format.JSON:
            emit_json({"project": proj.name, "stacks": rows})
        else:
            from rich.table import Table

            table = Table(title=f"{proj.name}: stacks", title_justify="left")
            for col in ("stack", "cloud", "tier", "config", "rollout"):
                table.add_column(col)
            for r in rows:
                status = styled("[green]valid[/green]") if r["valid"] else styled("[red]invalid[/red] {}", r["error"])
                ready = cast(dict[str, object], r["rollout"])["ready"]
                table.add_row(str(r["stack"]), str(r["cloud"] or "-"), str(r["tier"] or "-"), status,
                              "ready" if ready else "not ready")
            fit(out, table)
        if not all(r["valid"] for r in rows):
            err.print("error: one or more stacks do not validate")
            raise typer.Exit(1)
