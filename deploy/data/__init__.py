"""What the toolkit ships beside its code: the framework template, for
``framework.template = "bundled"`` (a project of the installed command has no checkout
holding one). In the checkout ``framework`` is a link to ``templates/framework``, so the two
are one file; a wheel carries a copy of it."""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED = "bundled"  # the framework.template value that names the shipped template


def framework_template() -> Path:
    """The shipped framework template by its real path (in the checkout ``framework`` is a
    link, and a template's folder, where its includes are found, must hold none)."""
    return Path(os.path.realpath(Path(__file__).parent / "framework")) / "CLAUDE.md"
