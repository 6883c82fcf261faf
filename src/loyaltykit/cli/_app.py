"""The typer application and helpers shared by the command modules."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loyaltykit import __version__
from loyaltykit.errors import LoyaltyKitError

app = typer.Typer(
    name="loyaltykit",
    help="Run and measure customer-loyalty programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
"""Console for normal output (stdout)."""
err_console = Console(stderr=True)
"""Console for errors and progress (stderr), so that stdout stays machine-readable."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loyaltykit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Run and measure customer-loyalty programs."""


def step_progress() -> Progress:
    """The progress display of commands that run named steps: description, bar, count, time
    (on stderr, so that stdout stays the result)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def fail(error: LoyaltyKitError | str, *, code: int = 2) -> typer.Exit:
    """Print ``error`` on stderr and return the ``typer.Exit`` to raise."""
    err_console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
    return typer.Exit(code)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (dates and decimals as strings)."""
    typer.echo(json.dumps(data, indent=2, default=str, sort_keys=False))
