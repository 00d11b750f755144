"""The ``gantry`` command line: a thin Typer front that parses, calls the library and renders results.

Exit codes (stable): 0 ok, 1 findings or rolled back, 2 usage or input error, 3 stack locked,
4 rollback failed (operator needed).
"""

from __future__ import annotations

import typer

from infra import commands, plugins
from infra.harness.gcpause import gc_paused

app = typer.Typer(
    name="gantry",
    help="Secure Kubernetes platforms and progressive delivery on Pulumi.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Registering commands imports typer, rich and pydantic models: pause the collector while that
# builds its many objects, as it finds nothing to free there.
with gc_paused():
    plugins.load()  # every backend registers before any stack config is validated
    commands.register_all(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
