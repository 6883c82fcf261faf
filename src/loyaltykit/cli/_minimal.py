"""The command line of a bare ``pip install loyaltykit`` (without the ``cli`` extra).

The full command line is built on typer and rich, which are an optional extra so that the core
keeps to pluggy, attrs, numpy, polars and scipy. Without them, ``loyaltykit --version`` and
``loyaltykit plugins [--all] [--json]`` still work, on the standard library's argparse with plain
text output; every other command says which extra to install.
"""

from __future__ import annotations

import argparse
import json
import sys

from loyaltykit import __version__

INSTALL_HINT = "this command needs the 'cli' extra (typer and rich): pip install 'loyaltykit[cli]'"


def run(argv: list[str]) -> int:
    """Run the minimal command line; returns the exit status."""
    from loyaltykit.plugins import get_host

    parser = argparse.ArgumentParser(
        prog="loyaltykit",
        description="Run and measure customer-loyalty programs. (Minimal mode: "
        + INSTALL_HINT
        + ")",
    )
    parser.add_argument("--version", action="version", version=f"loyaltykit {__version__}")
    sub = parser.add_subparsers(dest="command")
    plugins = sub.add_parser("plugins", help="List installed plugins.")
    plugins.add_argument("--all", action="store_true", help="Include the built-in plugins.")
    plugins.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    known = {"plugins", "--version", "-h", "--help"}
    if argv and argv[0] not in known:
        print(f"loyaltykit {argv[0]}: {INSTALL_HINT}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    infos = get_host().plugins(include_builtins=args.all)
    if args.json:
        data = [
            {
                "name": i.name,
                "source": i.source,
                "hooks": list(i.hooks),
                "provides": [{"kind": k, "name": n} for k, n in i.provides],
            }
            for i in infos
        ]
        print(json.dumps(data, indent=2))
        return 0
    if not infos:
        print("no plugins installed" + ("" if args.all else " (use --all to see the built-ins)"))
        return 0
    for info in infos:
        print(f"{info.name}  [{info.source}]")
        for kind, name in info.provides:
            print(f"    {kind}: {name}")
    return 0
