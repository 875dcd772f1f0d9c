"""Names users give, checked before any use (backup names: ``deploy.store.naming``).

Names a user gives (scripts, template ids, subsystems), and the names of the
files in the scripts folder, end up in paths, so they are checked before any use:
no separators, no ``..``, no NUL or other control character, no leading ``-``,
not empty, valid UTF-8, and short enough that every name derived from them fits
in one path component (255 bytes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from deploy.errors import BadName, ConfigError

# The longest name derived from a user's name is the temp file of a version file's backup:
# ".<NAME>_VERSION_backup_YYYYmmdd_HHMMSS_NNNN.deploy-tmp-PPPPPPP-xxxxxxxx", 65 bytes
# more than the name (tests/test_names.py checks it against the real naming code).
COMPONENT_BYTES = 255
DERIVED_BYTES = 65
MAX_NAME_BYTES = COMPONENT_BYTES - DERIVED_BYTES
TEMPLATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def shown(name: str) -> str:
    """``name`` quoted for a message, every byte that is not printable UTF-8 escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    text = text if len(text) <= 60 else text[:60] + "..."
    return "'" + "".join(ch if ch.isprintable() and ch != "'" else repr(ch)[1:-1]
                         if ch != "'" else "\\'" for ch in text) + "'"


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe to use as one path component, else raise BadName."""
    shown_name = shown(name)
    if name == "":
        raise BadName(f"{what} is empty")
    if "\x00" in name:
        raise BadName(f"{what} {shown_name} contains a NUL byte")
    if "/" in name or "\\" in name:
        raise BadName(f"{what} {shown_name} contains a path separator")
    if name in {".", ".."}:
        raise BadName(f"{what} {shown_name} is not a file name")
    if name.startswith("-"):
        raise BadName(f"{what} {shown_name} starts with '-'")
    if any(ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f for ch in name):
        raise BadName(f"{what} {shown_name} contains a control character")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise BadName(f"{what} {shown_name} is not valid UTF-8; rename it") from err
    if size > MAX_NAME_BYTES:
        raise BadName(f"{what} {shown_name} is {size} bytes, longer than {MAX_NAME_BYTES} "
                      f"(the names derived from it must fit in {COMPONENT_BYTES})")
    return name


def check_template_id(template_id: str) -> str:
    """A template id is a safe name matching ``[A-Za-z0-9][A-Za-z0-9._-]*``."""
    check_name(template_id, "template id")
    if not TEMPLATE_ID.match(template_id):
        raise BadName(f"template id {template_id!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
    return template_id


def utf8(path: Path) -> Path:
    """``path``, if its bytes are UTF-8: the index keeps paths (targets, the project's
    config file) as SQLite text, which must be UTF-8, so such a path is bad input (exit 2)
    named before anything is written, not an "unexpected UnicodeEncodeError" mid-run."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: this path is not valid UTF-8; the backup index records "
                          "paths as UTF-8 text: rename the folder or file") from None
    return path
