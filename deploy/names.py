"""User-given names and the exact backup file names of the contract.

Names a user gives (scripts, template ids, subsystems) end up in paths, so they
are checked before any use: no separators, no ``..``, no NUL, no leading ``-``,
not empty, at most 255 bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

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


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%d_%H%M%S")


def _stamp_ms(when: datetime) -> str:
    return f"{_stamp(when)}_{when.microsecond // 1000:03d}"


def name_key(category: str, key: str, target_name: str) -> str:
    """What a backup is named after: the script name or template id (the change's key), or
    the target's file name for version files and parent ``CLAUDE.md`` files, whose keys are
    the subsystem and the parent folder."""
    return target_name if category in {"versions", "parents"} else key


def backup_stem(category: str, key: str, when: datetime) -> tuple[str, str]:
    """Return (stem, suffix) of the contract's backup name for one target.

    ``key`` is what :func:`name_key` returns: the script name, the version file
    name, the template id or the parent file name; the framework ignores it.
    """
    if category == "framework":
        return f"framework_CLAUDE_md_{_stamp_ms(when)}", ".backup"
    if category == "scripts":
        return f"{key}_backup_{_stamp(when)}", ""
    if category == "versions":
        return f"{key}_backup_{_stamp(when)}", ""
    if category in {"templates", "parents"}:
        return f"{key}_{_stamp(when)}", ".backup"
    raise ValueError(f"unknown category {category!r}")


def category_folder(category: str, key: str) -> str:
    """The folder, relative to the backup tree, that holds a category's backups."""
    if category == "templates":
        return f"templates/{key}"
    if category == "parents":
        return "parent_directory_manager"
    return category


def unique_name(stem: str, suffix: str, taken: Callable[[str], bool]) -> str:
    """``stem + suffix``, or with ``_01``, ``_02`` ... appended to the stem while taken."""
    name = stem + suffix
    counter = 0
    while taken(name):
        counter += 1
        name = f"{stem}_{counter:02d}{suffix}"
    return name
