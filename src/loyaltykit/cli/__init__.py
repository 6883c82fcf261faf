"""The ``loyaltykit`` command line (the full one needs the ``cli`` extra: typer and rich).

Without the extra, :mod:`loyaltykit.cli._minimal` still answers ``--version`` and ``plugins``.

Each group of commands lives in its own module listed in :data:`COMMAND_MODULES`; importing one
adds its commands to :data:`loyaltykit.cli._app.app`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

COMMAND_MODULES: tuple[str, ...] = (
    "loyaltykit.cli.plugins_cmd",
    "loyaltykit.cli.engine_cmd",
    "loyaltykit.cli.analyze_cmd",
    "loyaltykit.cli.models_cmd",
    "loyaltykit.cli.synthetic_cmd",
)
"""Modules that add commands to the app, in help order."""


def build_app() -> Any:
    """Import the command modules and return the typer app."""
    try:
        from loyaltykit.cli._app import app
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise SystemExit(
            f"the loyaltykit command line needs the 'cli' extra ({exc.name} is missing): "
            "pip install 'loyaltykit[cli]'"
        ) from exc
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    return app


def click_command() -> Any:
    """The app as a command group object (used to list the commands in the docs)."""
    import typer.main

    return typer.main.get_command(build_app())


def cli_extra_installed() -> bool:
    """Whether typer and rich (the ``cli`` extra) can be imported."""
    return (
        importlib.util.find_spec("typer") is not None
        and importlib.util.find_spec("rich") is not None
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``loyaltykit`` script."""
    args = argv if argv is not None else sys.argv[1:]
    if not cli_extra_installed():
        from loyaltykit.cli import _minimal

        raise SystemExit(_minimal.run(args))
    app = build_app()
    app(args=args, prog_name="loyaltykit")
