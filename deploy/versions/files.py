"""Version files, read with their layout kept: ``<NAME>_VERSION`` in ``versions.dir``, the
files ``[tool.deploy.versions.files]`` names (subsystem -> path, such as the original's
``framework/VERSION`` and ``bin/VERSION``), and the release ``VERSION`` (subsystem
``version``).

Whatever whitespace the maintainer left around the version (a BOM, no final
newline, CRLF) is kept byte for byte when the file is rewritten.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from deploy import fsio
from deploy.categories import RELEASE_KEY, version_file_name
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


class Layout(NamedTuple):
    """Where the version files are: ``versions.dir`` and the ``versions.files`` table."""

    dir: Path
    files: tuple[tuple[str, Path], ...] = ()  # subsystem -> path, the config's table


def layout(versions_dir: Path, files: Iterable[tuple[str, Path]] = ()) -> Layout:
    return Layout(versions_dir, tuple(files))


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


def version_path(where: Layout | Path, subsystem: str) -> Path:
    """The version file of a subsystem (checked): ``memory`` -> ``<dir>/MEMORY_VERSION``, a
    subsystem of ``versions.files`` -> its path, ``version`` -> ``<dir>/VERSION``."""
    where = where if isinstance(where, Layout) else Layout(where)
    key = subsystem_key(subsystem)
    for name, path in where.files:
        if name == key:
            return path
    return where.dir / version_file_name(key)


def read(where: Layout | Path, subsystem: str) -> VersionFile:
    """Read and parse one subsystem's version file; a missing or garbled file is ConfigError."""
    key = subsystem_key(subsystem)
    path = version_path(where, key)
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


def _in_dir(versions_dir: Path) -> list[str]:
    try:
        names = os.listdir(versions_dir)
    except FileNotFoundError as err:
        raise ConfigError(f"{versions_dir}: versions folder not found") from err
    except OSError as err:
        raise ConfigError(f"{versions_dir}: cannot list versions: {err.strerror}") from err
    found = sorted(m.group(1).lower() for m in map(FILE_NAME.match, names) if m)
    if RELEASE_KEY in found:
        raise ConfigError(f"{versions_dir / (FRAMEWORK_FILE + SUFFIX)}: "
                          f"subsystem {RELEASE_KEY!r} is the release {FRAMEWORK_FILE} file; "
                          "rename this one")
    return found


def subsystems(where: Layout | Path) -> list[str]:
    """Every subsystem with a version file, sorted: the ``<NAME>_VERSION`` files of the
    folder (legacy backups are not), then the ``versions.files`` table's, in its order.
    The release ``VERSION`` is not among them (:func:`framework_version` reads it).

    A table subsystem that is also a ``<NAME>_VERSION`` file of the folder, or a table
    path that is another subsystem's file (or the release ``VERSION``), is ConfigError:
    one file, one subsystem."""
    where = where if isinstance(where, Layout) else Layout(where)
    found = _in_dir(where.dir) if not where.files or where.dir.is_dir() else []
    files = {where.dir / version_file_name(key): key for key in [*found, RELEASE_KEY]}
    for key, path in where.files:
        if key in found:
            raise ConfigError(f"tool.deploy.versions.files.{key}: subsystem {key!r} is also "
                              f"the file {where.dir / version_file_name(key)}; give the table "
                              "entry another name")
        other = files.get(path)
        if other is not None:
            what = f"the release {FRAMEWORK_FILE}" if other == RELEASE_KEY \
                else f"subsystem {other!r}'s file"
            raise ConfigError(f"tool.deploy.versions.files.{key}: {path} is {what}; one "
                              "file, one subsystem")
        files[path] = key
    return found + [key for key, _path in where.files]


def read_all(where: Layout | Path) -> dict[str, VersionFile]:
    """Every subsystem's version file, by lower-case subsystem."""
    return {key: read(where, key) for key in subsystems(where)}


def release_version(where: Layout | Path) -> VersionFile | None:
    """The release ``VERSION`` file read as subsystem ``version``, or None when absent."""
    where = where if isinstance(where, Layout) else Layout(where)
    if not os.path.lexists(where.dir / FRAMEWORK_FILE):
        return None
    return read(where, RELEASE_KEY)


def framework_version(versions_dir: Path) -> str | None:
    """The stripped content of ``VERSION`` in the versions folder, or None when absent."""
    path = versions_dir / FRAMEWORK_FILE
    try:
        return fsio.read_bytes(path).decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the framework version: {err}") from err


def from_config(table: dict[str, Any], base: Path,
                resolve: Callable[[str], Path]) -> tuple[tuple[str, Path], ...]:
    """``[tool.deploy.versions.files]``: each subsystem checked like a user's name, each path
    resolved from the config's folder and refused when it leaves the project (that folder,
    symlinks resolved), is a folder or a symlink, or is listed twice. One ``lstat`` per
    entry, only for a config that has the table; a file that is not there yet is fine
    (``versions.bump --create``), and reading it refuses a symlink again."""
    import stat

    from deploy.categories import RELEASE_KEY
    from deploy.versions.files import subsystem_key

    where = "tool.deploy.versions.files"
    project = os.path.realpath(base)
    found: list[tuple[str, Path]] = []
    seen: dict[Path, str] = {}
    for name, value in table.items():
        key = subsystem_key(name)
        if key == RELEASE_KEY:
            raise ConfigError(f"{where}.{name}: subsystem {RELEASE_KEY!r} is the release "
                              "VERSION file of versions.dir; give the entry another name")
        if any(k == key for k, _ in found):
            raise ConfigError(f"{where}.{name}: subsystem {key!r} is listed twice")
        if not isinstance(value, str) or not value or "\x00" in value:
            raise ConfigError(f"{where}.{name} must be a path (a string), not {value!r}")
        if os.path.basename(os.path.normpath(value)) in ("", ".", "..") or value.endswith("/"):
            raise ConfigError(f"{where}.{name} {value!r}: names a folder, not a version file")
        path = resolve(value)
        real = Path(os.path.realpath(path.parent), path.name)
        if os.path.commonpath([project, real]) != project:
            raise ConfigError(f"{where}.{name} {value!r} is {real}, outside the project "
                              f"{project}; version files live in the project")
        try:
            kind = stat.S_IFMT(os.lstat(real).st_mode)
        except OSError:
            kind = None
        if kind == stat.S_IFLNK:
            raise ConfigError(f"{where}.{name} {value!r}: {real} is a symlink; name the file "
                              "itself (version files are never followed through a link)")
        if kind == stat.S_IFDIR:
            raise ConfigError(f"{where}.{name} {value!r}: {real} is a folder, not a version "
                              "file")
        if real in seen:
            raise ConfigError(f"{where}.{seen[real]} and {where}.{name} are both {real}; one "
                              "file, one subsystem")
        seen[real] = name
        found.append((key, real))
    return tuple(found)
