"""Names users give, checked before any use (backup names: ``deploy.store.naming``).

Names a user gives (scripts, template ids, subsystems) end up in paths, so they
are checked before any use: no separators, no ``..``, no NUL, no leading ``-``,
not empty, at most 255 bytes.
"""

from __future__ import annotations

import re

from deploy.errors import BadName

MAX_NAME_BYTES = 255
TEMPLATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe to use as one path component, else raise BadName."""
    shown = repr(name) if len(name) <= 60 else repr(name[:60] + "...")
    if name == "":
        raise BadName(f"{what} is empty")
    if "\x00" in name:
        raise BadName(f"{what} {shown} contains a NUL byte")
    if "/" in name or "\\" in name:
        raise BadName(f"{what} {shown} contains a path separator")
    if name in {".", ".."}:
        raise BadName(f"{what} {shown} is not a file name")
    if name.startswith("-"):
        raise BadName(f"{what} {shown} starts with '-'")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise BadName(f"{what} {shown} is longer than {MAX_NAME_BYTES} bytes")
    if any(ord(ch) < 32 for ch in name):
        raise BadName(f"{what} {shown} contains a control character")
    return name


def check_template_id(template_id: str) -> str:
    """A template id is a safe name matching ``[A-Za-z0-9][A-Za-z0-9._-]*``."""
    check_name(template_id, "template id")
    if not TEMPLATE_ID.match(template_id):
        raise BadName(f"template id {template_id!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
    return template_id
