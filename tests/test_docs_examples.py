"""Every ```python block in the docs runs.

Blocks of one page share a namespace and run in order, in a fresh temporary working directory, so a
page reads like a script. Blocks fenced as ``console``, ``text`` or ``pycon`` are not run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(
    r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})python[ \t]*\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.S | re.M,
)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown page, in order."""
    blocks = []
    for m in FENCE.finditer(text):
        indent = len(m.group("indent"))
        body = "\n".join(line[indent:] for line in m.group("body").splitlines())
        blocks.append(body)
    return blocks


PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and python_blocks(p.read_text())
)


def test_fence_parser_finds_blocks() -> None:
    text = "intro\n\n```python\nx = 1\n```\n\n```console\n$ ls\n```\n\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == ["x = 1", "y = x + 1"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_docs_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(python_blocks(page.read_text())):
        code = compile(block, f"{page.relative_to(DOCS)}[block {i}]", "exec")
        exec(code, namespace)  # running our own documentation is the point
    try:
        import matplotlib.pyplot as plt

        plt.close("all")
    except ImportError:  # pragma: no cover
        pass
    assert os.getcwd() == str(tmp_path)
