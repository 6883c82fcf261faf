"""Sphinx configuration of the loyaltykit docs."""

from __future__ import annotations

import sys
from pathlib import Path

import loyaltykit

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "loyaltykit"
author = "loyaltykit developers"
copyright = "2026, loyaltykit developers"
release = loyaltykit.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "cli_reference",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_class_signature = "separated"

# no intersphinx: the docs build offline
nitpicky = False

html_theme = "furo"
html_title = f"loyaltykit {release}"
