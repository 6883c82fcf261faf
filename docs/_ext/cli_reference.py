"""A ``cli-reference`` directive: the ``--help`` of ``loyaltykit`` and of each of its commands.

The text comes from the typer app itself at build time, so the reference cannot drift from the
code.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from typer.testing import CliRunner


def _help(argv: list[str]) -> str:
    from loyaltykit.cli import build_app

    result = CliRunner().invoke(
        build_app(), [*argv, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    )
    if result.exit_code != 0:
        raise RuntimeError(f"loyaltykit {' '.join(argv)} --help failed: {result.output}")
    return result.output.rstrip()


class CliReference(SphinxDirective):
    """Insert one section per command with its help text."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from loyaltykit.cli import click_command

        group = click_command()
        out: list[nodes.Node] = [nodes.literal_block(text=_help([]), language="text")]
        for name in sorted(group.commands):
            section = nodes.section(ids=[f"cli-{name}"])
            section += nodes.title(text=f"loyaltykit {name}")
            section += nodes.literal_block(text=_help([name]), language="text")
            out.append(section)
        return out


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("cli-reference", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
