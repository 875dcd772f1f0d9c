"""The backup tree: where it is, its folders, reading its index, and checking a backup."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from deploy import categories, fsio
from deploy.errors import DeployError, IntegrityError, WriteFailed
from deploy.store import lock, stored, trust
from deploy.store.index import ChangeRow, Index, NoIndexYet
from deploy.store.naming import category_folder

INDEX_NAME = "index.sqlite"
LOCK_NAME = "lock"
JOURNAL_NAME = INDEX_NAME + "-journal"


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def describe(err: OSError) -> str:
    return err.strerror or str(err)


def oserror(op: str, path: Path, err: OSError) -> WriteFailed:
    return WriteFailed(f"{path}: {op} failed: {describe(err)}")


def sync_folders(folders: Iterable[Path], what: str) -> None:
    """fsync each folder once (a file's fsync does not persist its rename)."""
    for folder in folders:
        try:
            fsio.fsync_dir(folder)
        except OSError as err:
            raise oserror(f"syncing {what}", folder, err) from err


class Store:
    """The backup tree under ``<state_dir>/backups``."""

    def __init__(self, state_dir: Path, project: str | None = None) -> None:
        self.state_dir = state_dir
        # The project whose runs this store's step-back rollbacks, history and status see
        # (its config file); None: every project. One index serves the machine, and two
        # clones of one repository must not roll back each other's version files.
        self.project = project
        self.tree = state_dir / "backups"
        self.index_path = self.tree / INDEX_NAME
        self.lock_path = self.tree / LOCK_NAME

    def folder(self, category: str, key: str = "") -> Path:
        return self.tree / category_folder(category, key)

    @contextmanager
    def reading(self) -> Iterator[Index | None]:
        """The index opened read-only for the body (None when no run has written one yet),
        closed after it: the one way to read the tree's records. A tree another user
        could have written is refused first (``trust``)."""
        index = self._read_index() if self.check_trust() else None
        try:
            yield index
        finally:
            if index is not None:
                index.close()

    def check_trust(self) -> bool:
        """Refuse a tree, folder, index or lock another user owns or may write, or a link;
        returns whether the tree exists."""
        return trust.check_tree(self.tree, categories.FOLDERS, categories.NESTED,
                                (INDEX_NAME, JOURNAL_NAME, LOCK_NAME))

    def _read_index(self) -> Index | None:
        if not self.index_path.exists():
            return None
        try:
            return Index(self.index_path, readonly=True)
        except NoIndexYet:
            # Another process's first run created the file but not yet its tables (found by
            # the concurrency test: eight first deploys at once).
            return None

    def backup_files(self) -> list[Path]:
        """Every file in the category folders (temp files aside), sorted."""
        found = []
        for folder in categories.FOLDERS:
            for dirpath, _dirs, files in os.walk(self.tree / folder):
                found += [Path(dirpath, f) for f in files if not fsio.is_temp_name(f)]
        return sorted(found)

    def lock_holder(self) -> dict[str, object] | None:
        """Who holds the tree's lock now (pid, command, started), read without taking it."""
        return lock.holder(self.lock_path)

    def check_index_kept(self) -> None:
        """With no index but backups in the tree, the index was lost: nothing in the tree
        can be accounted for, so verify and rollbacks stop here (exit 1) instead of saying
        "nothing to roll back"."""
        if self.index_path.exists():
            return
        files = self.backup_files()
        if files:
            shown = ", ".join(str(f.relative_to(self.tree)) for f in files[:3])
            more = f" and {len(files) - 3} more" if len(files) > 3 else ""
            raise IntegrityError(
                f"{self.index_path}: the backup index is missing, but the tree holds "
                f"{len(files)} backup(s) it cannot account for ({shown}{more}); rebuild it with "
                "`invoke backups.reindex`, or copy a backup back by hand with cp")

    def backup_path(self, row: ChangeRow) -> Path:
        """The backup's file as it lies in the tree (``<name>.zst`` when compressed)."""
        assert row.stored is not None
        return self.tree / row.stored

    def check_backup(self, row: ChangeRow, index: Index | None = None) -> Path:
        """The backup file of ``row`` if it exists and its original bytes' sha256 matches
        (through zstd when compressed); else IntegrityError. With ``index``, a file with
        several hard links must have only names the index records (``stored``)."""
        path = self.backup_path(row)
        if row.pruned:
            raise IntegrityError(f"{path}: backup {row.seq} was pruned; nothing to restore")
        found = stored.problem(self.tree, index, row)
        if found is not None:
            raise IntegrityError(f"{path}: {found[1]}")
        return path

    def restore_source(self, row: ChangeRow, index: Index | None = None, *,
                       integrity: bool = True) -> Path | stored.Decompressed:
        """What a restore of ``row`` copies into its target: the backup file (checked first
        when ``integrity``: a compressed one is decompressed and hashed, a chunk at a time),
        or a compressed one's original bytes as the write decompresses them again (and
        hashes them: the write refuses other bytes, ``integrity`` or not)."""
        path = self.check_backup(row, index) if integrity else self.backup_path(row)
        return stored.Decompressed(path) if row.compressed else path

    def ensure_tree(self) -> None:
        """Create what is missing of the tree (0700), check all of it, and tighten what an
        earlier version left readable (the tree 0700, the index and the lock 0600)."""
        if self.tree.is_symlink():
            raise DeployError(f"{self.tree}: the backup tree is a symlink; refusing to write")
        for folder in categories.FOLDERS:
            path = self.tree / folder
            if path.is_symlink():
                raise DeployError(f"{path}: backup folder is a symlink; refusing to write")
            if path.is_dir():
                continue
            try:
                fsio.makedirs_durably(path, trust.PRIVATE_DIR)
            except OSError as err:
                raise oserror("creating backup folder", path, err) from err
        self.check_trust()
        try:
            trust.tighten(self.tree, trust.PRIVATE_DIR)
            for folder in categories.FOLDERS:
                trust.tighten(self.tree / folder, trust.PRIVATE_DIR)
            for name in (INDEX_NAME, JOURNAL_NAME, LOCK_NAME):
                trust.tighten(self.tree / name, trust.PRIVATE_FILE)
        except OSError as err:
            raise oserror("making private", self.tree, err) from err
