"""The backup tree: where it is, its folders, its records, and opening a session on it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from deploy import fsio, lock
from deploy.errors import DeployError, IntegrityError, WriteFailed
from deploy.index import ChangeRow, Index, NoIndexYet
from deploy.names import category_folder

if TYPE_CHECKING:
    from deploy.store.session import Session

CATEGORIES = ("scripts", "versions", "templates", "framework", "parents")
FOLDERS = ("framework", "scripts", "versions", "templates", "parent_directory_manager")
INDEX_NAME = "index.sqlite"
# Files written before one batched fsync; bounded so a huge run never holds too many fds.
BATCH = 256
LOCK_NAME = "lock"


class Applied(NamedTuple):
    """One change a run made: its category, target, action and backup (None when absent)."""

    category: str
    key: str
    target: Path
    action: str
    backup: Path | None
    seq: int


class RunResult(NamedTuple):
    run: int | None
    changes: tuple[Applied, ...]
    recovered: tuple[int, ...] = ()


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

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.tree = state_dir / "backups"
        self.index_path = self.tree / INDEX_NAME
        self.lock_path = self.tree / LOCK_NAME

    def folder(self, category: str, key: str = "") -> Path:
        return self.tree / category_folder(category, key)

    def read_index(self) -> Index | None:
        """The index opened read-only, or None when no run has written one yet."""
        if not self.index_path.exists():
            return None
        try:
            return Index(self.index_path, readonly=True)
        except NoIndexYet:
            # Another process's first run created the file but not yet its tables (found by
            # the concurrency test: eight first deploys at once).
            return None

    def backup_path(self, row: ChangeRow) -> Path:
        assert row.backup is not None
        return self.tree / row.backup

    def check_backup(self, row: ChangeRow) -> Path:
        """The backup file of ``row`` if it exists and its sha256 matches; else IntegrityError."""
        path = self.backup_path(row)
        if row.pruned:
            raise IntegrityError(f"{path}: backup {row.seq} was pruned; nothing to restore")
        try:
            state = fsio.read_state(path)
        except OSError as err:
            raise IntegrityError(f"{path}: cannot read backup: {describe(err)}") from err
        if not state.exists:
            raise IntegrityError(f"{path}: backup {row.seq} is missing")
        if state.sha256 != row.old_sha256:
            raise IntegrityError(
                f"{path}: backup {row.seq} is corrupt: sha256 {state.sha256} != {row.old_sha256}")
        return path

    def _ensure_tree(self) -> None:
        if self.tree.is_symlink():
            raise DeployError(f"{self.tree}: the backup tree is a symlink; refusing to write")
        for folder in FOLDERS:
            path = self.tree / folder
            if path.is_symlink():
                raise DeployError(f"{path}: backup folder is a symlink; refusing to write")
            if path.is_dir():
                continue
            try:
                fsio.makedirs_durably(path)
            except OSError as err:
                raise oserror("creating backup folder", path, err) from err

    @contextmanager
    def session(self, *, command: str, actor: str, wait: float = 0) -> Iterator[Session]:
        """Take the lock, open the index, record killed runs as interrupted, then yield."""
        self._ensure_tree()
        with lock.hold(self.lock_path, command=command, started=now_iso(), wait=wait):
            index = Index(self.index_path)
            try:
                from deploy.store.session import Session

                sess = Session(self, index, command=command, actor=actor)
                sess.recover()
                yield sess
            finally:
                index.close()

