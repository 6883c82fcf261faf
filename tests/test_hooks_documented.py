"""Every hook in hookspecs.py has a section in docs/reference/hooks.md naming all its arguments."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from loyaltykit import hookspecs

HOOKS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "hooks.md"


def hook_functions() -> list[tuple[str, list[str]]]:
    out = []
    for name, obj in vars(hookspecs).items():
        if name.startswith("loyaltykit_") and inspect.isfunction(obj):
            out.append((name, list(inspect.signature(obj).parameters)))
    return sorted(out)


def sections(text: str) -> dict[str, str]:
    """Level-2/3 headings that are a hook name (in backticks or not) -> their body."""
    parts = re.split(r"^#{2,3} +`?(loyaltykit_\w+)`?.*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_there_are_hooks() -> None:
    assert len(hook_functions()) >= 9


@pytest.mark.parametrize(("hook", "args"), hook_functions())
def test_hook_is_documented(hook: str, args: list[str]) -> None:
    documented = sections(HOOKS_PAGE.read_text())
    assert hook in documented, f"{hook} has no section in {HOOKS_PAGE.name}"
    body = documented[hook]
    for arg in args:
        assert re.search(rf"`{arg}`", body), f"argument {arg!r} of {hook} is not documented"


def test_page_has_no_stale_hooks() -> None:
    names = {h for h, _ in hook_functions()}
    stale = set(sections(HOOKS_PAGE.read_text())) - names
    assert not stale, f"hooks.md documents hooks that do not exist: {sorted(stale)}"
