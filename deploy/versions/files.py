"""Version files: ``<NAME>_VERSION`` in ``versions.dir``, read with their layout kept.

Whatever whitespace the maintainer left around the version (a BOM, no final
newline, CRLF) is kept byte for byte when the file is rewritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.errors import BadName, ConfigError
from deploy.names import check_name
from deploy.versions.values import Version, parse

SUFFIX = "_VERSION"
FRAMEWORK_FILE = "VERSION"
# A subsystem is one lower-case word; its file is that word upper-cased plus _VERSION.
SUBSYSTEM = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
FILE_NAME = re.compile(r"([A-Z0-9][A-Z0-9_-]*)_VERSION\Z")
# Whitespace around the version is kept as is; a UTF-8 BOM counts as part of the lead.
LAYOUT = re.compile(rb"(\xef\xbb\xbf)?(\s*)(\S+)(\s*)\Z")


class VersionFile(NamedTuple):
    """One ``<NAME>_VERSION`` file as read: its version and the layout around it."""

    subsystem: str
    path: Path
    version: Version
    lead: bytes
    trail: bytes
    state: fsio.FileState

    def render(self, version: Version) -> bytes:
        """The file's bytes holding ``version`` instead, every other byte kept."""
        return self.lead + version.text.encode("ascii") + self.trail


def subsystem_key(name: str) -> str:
    """Check a user-given subsystem name and return its lower-case key."""
    check_name(name, "subsystem")
    key = name.lower()
    if not SUBSYSTEM.match(key):
        raise BadName(f"subsystem {name!r} must match [A-Za-z0-9][A-Za-z0-9_-]*")
    return key


def version_path(versions_dir: Path, subsystem: str) -> Path:
    """The version file of a subsystem (checked): ``memory`` -> ``<dir>/MEMORY_VERSION``."""
    return versions_dir / f"{subsystem_key(subsystem).upper()}{SUFFIX}"


def read(versions_dir: Path, subsystem: str) -> VersionFile:
    """Read and parse one subsystem's version file; a missing or garbled file is ConfigError."""
    key = subsystem_key(subsystem)
    path = version_path(versions_dir, key)
    try:
        state = fsio.read_state(path)
        data = fsio.read_bytes(path) if state.exists else b""
    except OSError as err:
        raise ConfigError(
            f"{path}: version file is a symlink or not a regular file; refusing it "
            f"({err.strerror or err})") from err
    if not state.exists:
        raise ConfigError(f"{path}: no version file for subsystem {key!r}; see "
                          "`invoke versions.show`")
    # Hash what was read, so the backup check catches a file edited meanwhile.
    state = fsio.FileState(True, fsio.sha256_bytes(data), len(data), state.mode)
    layout = LAYOUT.match(data)
    if layout is None:
        raise ConfigError(f"{path}: expected one version (like 004 or 0.7.5), found "
                          f"{'nothing' if not data.strip() else 'several words'}")
    bom, lead, token, trail = layout.groups()
    try:
        text = token.decode("ascii")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: version is not ASCII text") from err
    return VersionFile(key, path, parse(text, path), (bom or b"") + lead, trail, state)


def subsystems(versions_dir: Path) -> list[str]:
    """Every subsystem with a ``<NAME>_VERSION`` file, sorted (legacy backups are not)."""
    try:
        names = os.listdir(versions_dir)
    except FileNotFoundError as err:
        raise ConfigError(f"{versions_dir}: versions folder not found") from err
    except OSError as err:
        raise ConfigError(f"{versions_dir}: cannot list versions: {err.strerror}") from err
    return sorted(m.group(1).lower() for m in map(FILE_NAME.match, names) if m)


def read_all(versions_dir: Path) -> dict[str, VersionFile]:
    """Every subsystem's version file, by lower-case subsystem."""
    return {key: read(versions_dir, key) for key in subsystems(versions_dir)}


def framework_version(versions_dir: Path) -> str | None:
    """The stripped content of ``VERSION`` in the versions folder, or None when absent."""
    path = versions_dir / FRAMEWORK_FILE
    try:
        return fsio.read_bytes(path).decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the framework version: {err}") from err
