"""Where the original left its backups, and which target each one backed up.

The locations are the contract's ("Legacy locations") and those the research memo found
in the original's code (``notes/framework.md`` section 5):

- v0.7.5: ``framework_backups/``, ``template_manager/backups/<id>/`` and
  ``parent_directory_manager/backups/`` under the state dir and under the ``.claude-pm/``
  beside the config file; ``<name>.backup.<ts>`` beside the scripts (also v0.8.0's
  ``--unified`` deployer) and ``<NAME>_VERSION.backup.<ts>`` beside the version files;
- v0.8.0: ``~/.local/.claude-pm/backups/scripts/`` (its script deployer's tree), and
  ``.claude-pm/backups/{framework,parent_directory_manager,templates/<id>,versions}/``
  beside the config file (the original's working folder and framework root).

A file is never legacy when the toolkit owns it (``owned``: the index names it as a
target or a backup), when it lies in the toolkit's own tree (``.claude-pm/backups/``
beside the config *is* that tree when ``state_dir`` is the config folder's
``.claude-pm``), or when its name carries no timestamp.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from deploy.config import Config
from deploy.legacy.locations import locations


class LegacyBackup(NamedTuple):
    """One file the original left behind, and what it backed up."""

    category: str          # the category it migrates into
    key: str               # that category's key: script, subsystem, template id, parent folder
    path: Path             # the legacy file
    target: Path | None    # the file it is a backup of; None: not known from the config
    size: int
    mode: int
    when: datetime         # the timestamp of its name (local time)
    origin: str            # whose layout it is: "v0.7.5" or "v0.8.0"
    location: str          # the folder it lies in, as the original named it
    reason: str | None     # why it is not offered for migration; None: it is

    @property
    def migratable(self) -> bool:
        return self.reason is None and self.target is not None


class NotScanned(NamedTuple):
    """A location that was not read, and why."""

    path: Path
    reason: str


class Scan(NamedTuple):
    found: tuple[LegacyBackup, ...]
    not_scanned: tuple[NotScanned, ...]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Tree:
    """The toolkit's own tree, recognized by its inode through any symlink or bind mount."""

    def __init__(self, tree: Path) -> None:
        self.path = tree
        self.identity = _identity(tree)
        self.resolved = tree.resolve()

    def holds(self, folder: Path) -> bool:
        resolved = folder.resolve()
        if resolved == self.resolved or self.resolved in resolved.parents:
            return True
        if self.identity is None:
            return False
        return any(_identity(p) == self.identity for p in (resolved, *resolved.parents))


def _entries(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    """The names in ``folder`` with their lstat, sorted; nothing if it cannot be read."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        try:
            yield name, os.lstat(folder / name)
        except OSError:
            continue


def find(cfg: Config, *, owned: Callable[[Path], bool] = lambda _path: False,
         home: Path | None = None) -> Scan:
    """Every legacy backup of the old locations, in location order, then by name."""
    tree = _Tree(cfg.state_dir / "backups")
    found: list[LegacyBackup] = []
    skipped: list[NotScanned] = []
    seen: set[tuple[int, int]] = set()
    for loc in locations(cfg, home):
        if not loc.folder.is_dir():
            continue
        if tree.holds(loc.folder):
            skipped.append(NotScanned(loc.folder, "this toolkit's own backup tree (state_dir)"))
            continue
        per = loc.per_subfolder
        folders = [(loc.folder, loc.classify)] if per is None else [
            (loc.folder / name, per(name)) for name, st in _entries(loc.folder)
            if stat.S_ISDIR(st.st_mode)]  # a symlinked subfolder is not followed
        for folder, classify in folders:
            if classify is None or (per is not None and tree.holds(folder)):
                continue
            for name, st in _entries(folder):
                if not stat.S_ISREG(st.st_mode) or name.startswith("."):
                    continue
                verdict = classify(name)
                if verdict is None or (st.st_dev, st.st_ino) in seen:
                    continue
                path = folder / name
                if owned(path):
                    continue
                seen.add((st.st_dev, st.st_ino))
                category, key, target, reason, when = verdict
                found.append(LegacyBackup(category, key, path, target, st.st_size,
                                          stat.S_IMODE(st.st_mode), when, loc.origin,
                                          loc.label, reason or _untrusted(st)))
    return Scan(tuple(found), tuple(skipped))


def _untrusted(st: os.stat_result) -> str | None:
    """Why a file another user could have written is not offered (a root restore would
    install its bytes), or None."""
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by uid {os.geteuid()} who runs this"
    if st.st_mode & 0o022:
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}; chmod go-w)"
    return None


def exposed(backup: LegacyBackup, path_env: str | None = None) -> bool:
    """Whether ``backup`` runs as a command: executable and in a folder of ``PATH``."""
    if not backup.mode & 0o111:
        return False
    entries = (os.environ.get("PATH", "") if path_env is None else path_env).split(os.pathsep)
    folder = backup.path.parent.resolve()
    for entry in entries:
        try:
            if Path(entry or ".").resolve() == folder:
                return True
        except OSError:
            continue
    return False
