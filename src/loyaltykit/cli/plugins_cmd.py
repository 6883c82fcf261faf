"""``loyaltykit plugins``: list plugins with their kind and origin."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from loyaltykit.cli._app import app, console, print_json
from loyaltykit.plugins import get_host


@app.command("plugins")
def plugins_command(
    all_: Annotated[bool, typer.Option("--all", help="Include the built-in plugins.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List installed plugins, what they provide and where they come from."""
    infos = get_host().plugins(include_builtins=all_)
    if as_json:
        print_json(
            [
                {
                    "name": i.name,
                    "source": i.source,
                    "hooks": list(i.hooks),
                    "provides": [{"kind": k, "name": n} for k, n in i.provides],
                }
                for i in infos
            ]
        )
        return
    table = Table(title="loyaltykit plugins" + (" (with built-ins)" if all_ else ""))
    table.add_column("plugin", style="bold")
    table.add_column("source")
    table.add_column("provides")
    table.add_column("hooks")
    for info in infos:
        provides = "\n".join(f"{kind}: {name}" for kind, name in info.provides) or "-"
        table.add_row(info.name, info.source, provides, "\n".join(info.hooks))
    if not infos:
        console.print(
            "no plugins installed" + ("" if all_ else " (use --all to see the built-ins)")
        )
        return
    console.print(table)
