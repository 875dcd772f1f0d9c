"""Version files: ``<NAME>_VERSION`` in ``versions.dir``, one per subsystem.

A version file holds a zero-padded serial (``004``) or a PEP 440 version
(``0.7.5``), with whatever whitespace the maintainer left around it. Bumps keep
that layout byte for byte: no trailing newline stays none, CRLF stays CRLF
(bump-my-version keeps line endings the same way). A bulk bump checks every
item before the first write and is applied by the store as one run, so it is
all or nothing (bump-my-version edits files one by one and can leave a
half-bumped tree: its issue #381).

Version files belong to the toolkit: there is no conflict check, the old bytes
are backed up and replaced. The backup is named after the file
(``MEMORY_VERSION_backup_...``) while the index key is the subsystem
(``memory``); :func:`deploy.store.naming.name_key` makes that split, naming each backup
after the subsystem's own file name (``deploy.categories.version_file_name``), so that two
files both called ``VERSION`` in the ``versions.files`` table get distinct backup names.

``values`` parses and steps versions, ``files`` reads the files with their
layout, ``bump`` plans bumps, ``requires`` checks compatibility.
"""


from deploy.versions.bump import CATEGORY, NEW_MODE, parse_setting, plan_bulk, plan_bump
from deploy.versions.files import (
    FRAMEWORK_FILE,
    SUFFIX,
    Layout,
    VersionFile,
    framework_version,
    layout,
    read,
    read_all,
    release_version,
    subsystem_key,
    subsystems,
    version_path,
)
from deploy.versions.requires import Requirement, check, found, gate, unmet
from deploy.versions.values import Version, next_version, parse

__all__ = ["CATEGORY", "FRAMEWORK_FILE", "NEW_MODE", "SUFFIX", "Layout", "Requirement",
           "Version", "VersionFile", "check", "found", "framework_version", "gate", "layout",
           "next_version", "parse", "parse_setting", "plan_bulk", "plan_bump", "read",
           "read_all", "release_version", "subsystem_key", "subsystems", "unmet",
           "version_path"]
