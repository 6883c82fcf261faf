"""Every public name has a docstring and a place in the docs.

A name's place is a literal mention in ``docs/**/*.md`` (for example an ``autoclass`` line or a
sentence in backticks), or an ``automodule`` of its module with ``:members:``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import loyaltykit

DOCS = Path(__file__).resolve().parent.parent / "docs"


def public_modules() -> list[str]:
    names = ["loyaltykit"]
    for info in pkgutil.walk_packages(loyaltykit.__path__, "loyaltykit."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or ".cli" in info.name:
            continue
        names.append(info.name)
    return sorted(names)


def public_names() -> list[tuple[str, str]]:
    out = []
    for modname in public_modules():
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:  # optional extra not installed
            pytest.skip(f"{modname} needs an optional extra: {exc}")
        for name in getattr(module, "__all__", []):
            if not name.startswith("__"):
                out.append((modname, name))
    return out


@functools.cache
def docs_text() -> str:
    return "\n".join(p.read_text() for p in DOCS.rglob("*.md") if "_build" not in p.parts)


@functools.cache
def automodules_with_members(text: str) -> set[str]:
    found = set()
    for m in re.finditer(r"automodule:: *([\w.]+)\s*\n((?:[ \t]+:[^\n]*\n)*)", text):
        if ":members:" in m.group(2) or "members" in m.group(2):
            found.add(m.group(1))
    return found


NAMES = public_names()


@pytest.mark.parametrize(("module", "name"), NAMES, ids=[f"{m}.{n}" for m, n in NAMES])
def test_public_name_has_docstring_and_docs_place(module: str, name: str) -> None:
    obj = getattr(importlib.import_module(module), name)
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
        doc = inspect.getdoc(obj)
        assert doc, f"{module}.{name} has no docstring"
        assert doc.strip(), f"{module}.{name} has an empty docstring"
    text = docs_text()
    home = getattr(obj, "__module__", module) if not inspect.ismodule(obj) else obj.__name__
    documented = (
        re.search(rf"\b{re.escape(name)}\b", text) is not None
        or module in automodules_with_members(text)
        or home in automodules_with_members(text)
    )
    assert documented, f"{module}.{name} appears nowhere in docs/"


def test_names_were_collected() -> None:
    assert ("loyaltykit", "Transaction") in NAMES
