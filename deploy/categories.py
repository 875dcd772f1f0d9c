"""The category table: one record per kind of target, read by every layer.

Naming, the tree's folders, retention, rollback and the task layer all look a
category up here, so adding one touches this table and its planning module only.
The backup names are the contract's (``../shared/CONTRACT.md``, "On disk"); the
framework's are stamped to the millisecond, the others to the second, and a
taken name gets ``_01``, ``_02`` ... appended to its stem (``deploy.store.naming``).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

KeepSetting = Literal["max_backups_per_type", "framework_keep"]


class Category(NamedTuple):
    """What the toolkit knows about one category of target."""

    name: str
    folder: str                # the backup folder, relative to the tree; {key}: the change's key
    stem: str                  # the backup file name's stem; {name} and {stamp} are filled in
    suffix: str                # what follows the stem (and its counter, when a name is taken)
    millis: bool               # whether {stamp} carries milliseconds
    named_after_target: bool   # {name}: the target's file name (else the change's key, or
                               # for versions the subsystem's file name: version_file_name)
    keep: KeepSetting          # the [tool.deploy.backup] setting that bounds a target's backups
    flag: str                  # the rollback task's narrowing flag
    help: str                  # what the narrowing flag takes (its --help text)


SCRIPTS = Category(
    name="scripts", folder="scripts", stem="{name}_backup_{stamp}", suffix="",
    millis=False, named_after_target=False, keep="max_backups_per_type",
    flag="name", help="only this script (repeatable)")
VERSIONS = Category(
    # Keyed by subsystem (memory), named after its file (MEMORY_VERSION_backup_...), the name
    # made from the subsystem (version_file_name), since several files may be called VERSION.
    name="versions", folder="versions", stem="{name}_backup_{stamp}", suffix="",
    millis=False, named_after_target=False, keep="max_backups_per_type",
    flag="subsystem", help="only this subsystem (repeatable)")
TEMPLATES = Category(
    name="templates", folder="templates/{key}", stem="{name}_{stamp}", suffix=".backup",
    millis=False, named_after_target=False, keep="max_backups_per_type",
    flag="id", help="only this template id (repeatable; exactly one with --render)")
FRAMEWORK = Category(
    name="framework", folder="framework", stem="framework_CLAUDE_md_{stamp}", suffix=".backup",
    millis=True, named_after_target=False, keep="framework_keep",
    flag="", help="")
PARENTS = Category(
    # Keyed by the parent folder, named after the file in it (CLAUDE.md_...): every parent
    # shares one folder, so restores go through the index, never by looking for a name.
    name="parents", folder="parent_directory_manager", stem="{name}_{stamp}", suffix=".backup",
    millis=False, named_after_target=True, keep="max_backups_per_type",
    flag="dir", help="only this parent folder (repeatable; must be configured)")

TABLE: tuple[Category, ...] = (SCRIPTS, VERSIONS, TEMPLATES, FRAMEWORK, PARENTS)
BY_NAME = {c.name: c for c in TABLE}
NAMES: tuple[str, ...] = tuple(c.name for c in TABLE)
# The folders a tree holds from its start: each category's, up to its first {key}.
FOLDERS: tuple[str, ...] = tuple(c.folder.partition("/")[0] for c in TABLE)
# Those that hold a subfolder per key (templates/{key}).
NESTED: tuple[str, ...] = tuple(c.folder.partition("/")[0] for c in TABLE if "/" in c.folder)


# The release VERSION file's subsystem: `versions.bump version`, `--subsystem version`.
RELEASE_KEY = "version"


def version_file_name(key: str) -> str:
    """What a version file's backup is named after, from its subsystem alone: its own file
    name ``<NAME>_VERSION`` (``memory`` -> ``MEMORY_VERSION``), ``VERSION`` for the release
    file. A ``versions.files`` entry (``framework_core = "framework/VERSION"``) is named
    ``FRAMEWORK_CORE_VERSION`` too: the original has several files called ``VERSION``, and
    the subsystem keeps each backup name unique and tells ``backups.reindex`` its target."""
    return "VERSION" if key == RELEASE_KEY else f"{key.upper()}_VERSION"


def get(name: str) -> Category:
    """The category called ``name``; KeyError for one the table does not know."""
    return BY_NAME[name]
