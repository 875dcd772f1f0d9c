"""The index file's connection: opening it (read-only without writing a byte), and commits.

The journal mode stays DELETE (no WAL) so that a read-only open creates no
file: ``--dry-run`` must leave the tree byte-identical.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deploy.errors import DeployError
from deploy.store.index.rows import ChangeRow, RunRow
from deploy.store.index.schema import ADDED_COLUMNS, ADDED_INDEXES, SCHEMA, SCHEMA_VERSION


class IndexError_(DeployError):
    """The index could not be read or written."""


def uri(path: Path, *options: str) -> str:
    """The index's SQLite URI: never through a symlink (``nofollow``, SQLite 3.31+)."""
    # Quoted from its bytes: a folder whose name is not UTF-8 is a path like any other.
    return "file:" + quote(os.fsencode(path)) + "?" + "&".join([*options, "nofollow=1"])


def create_private(path: Path) -> None:
    """Create the index file 0600 before SQLite does (its journal takes the same mode)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except FileExistsError:
        return
    os.close(fd)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; first lets SQLite roll back a hot journal if there is one.

    A run killed (or failing) mid-commit leaves ``index.sqlite-journal`` behind, and a
    read-only connection cannot roll it back: every read then fails with "attempt to write
    a readonly database", and so did ``history`` and the read-only planning of every
    writing task, forever (found by the strace sweep). Rolling the journal back restores
    the last committed state, which is what any read-write open does first.
    """
    db = sqlite3.connect(uri(path, "mode=ro"), uri=True, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        journal = path.with_name(path.name + "-journal")
        if not journal.exists() or not os.access(path.parent, os.W_OK):
            raise
    except BaseException:
        db.close()  # not a database at all, say: the caller gets the error, not a leak
        raise
    recover = sqlite3.connect(uri(path), uri=True, isolation_level=None)
    try:
        recover.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        recover.close()
    return sqlite3.connect(uri(path, "mode=ro"), uri=True, isolation_level=None)


# Every table of the schema, in the order it creates them.
TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))


class NoIndexYet(IndexError_):
    """The index file exists but holds no schema yet: the first run is creating it."""


class Db:
    """The SQLite connection: opened read-only or read-write, one durable commit at a time."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        try:
            if readonly:
                self.db = _connect_readonly(path)
                if self._being_created():
                    self.db.close()
                    raise NoIndexYet(f"{path}: the backup index is being created")
            else:
                create_private(path)
                self.db = sqlite3.connect(uri(path), uri=True, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=DELETE")
                self.db.execute("PRAGMA synchronous=FULL")
                self._create()
            self.db.execute("PRAGMA foreign_keys=ON")
            # What a row is read with: NULL for a column an older index lacks.
            self.change_cols = self._select("changes", ChangeRow._fields)
            self.run_cols = self._select("runs", RunRow._fields)
            self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone()  # reads the schema
        except sqlite3.DatabaseError as err:
            if hasattr(self, "db"):
                self.db.close()  # an unusable file must not leak its connection
            raise IndexError_(f"{path}: cannot use the backup index: {err}") from err

    def _being_created(self) -> bool:
        """Whether the schema is not all there and no run was ever recorded: another first
        run is creating it, or one was killed while it did (the schema's statements commit
        one by one; a kill after ``runs`` but before ``changes`` made every later read-only
        open fail with "no such table: changes" until a writing run completed it). An
        index of an earlier version lacks only newer tables and has runs: it is read."""
        have = {str(r[0]) for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "runs" not in have:
            return True
        return not set(TABLES) <= have \
            and self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None

    def _create(self) -> None:
        """The tables, the schema version and the columns added since, in one transaction:
        a run killed while it creates the index leaves every table or none. (Statement by
        statement, a kill between two CREATEs left ``runs`` without ``changes``, and every
        later read of the index failed: found by ``backups.reindex``'s SIGKILL test.)"""
        try:
            # executescript commits a pending transaction first, so BEGIN goes inside it.
            self.db.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nINSERT OR IGNORE INTO meta "
                                  f"VALUES ('schema', '{SCHEMA_VERSION}');")
            for table, column, kind in ADDED_COLUMNS:
                if column not in self._columns(table):
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            for statement in ADDED_INDEXES:
                self.db.execute(statement)
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback_quietly()
            raise

    def _rollback_quietly(self) -> None:
        """Roll back if a transaction is still open. SQLite may have rolled back by itself
        already (an I/O error mid-statement); a second ROLLBACK would then raise and hide
        the first error."""
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass

    def _select(self, table: str, fields: tuple[str, ...]) -> str:
        have = self._columns(table)
        return ", ".join(c if c in have else f"NULL AS {c}" for c in fields)

    def _columns(self, table: str) -> set[str]:
        return {str(r[1]) for r in self.db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self.db.close()

    def integrity_problems(self) -> list[str]:
        """What SQLite's ``PRAGMA integrity_check`` finds wrong in the file; empty when
        it says ``ok``."""
        found = [str(r[0]) for r in self.execute("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One durable commit; rolled back whole on any error."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as err:
            raise IndexError_(f"{self.path}: cannot write the backup index: {err}") from err
        try:
            yield
        except BaseException:
            self._rollback_quietly()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            self._rollback_quietly()
            raise IndexError_(f"{self.path}: cannot commit the backup index: {err}") from err

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        try:
            return self.db.executemany(sql, params)
        except sqlite3.DatabaseError as err:
            raise IndexError_(f"{self.path}: backup index query failed: {err}") from err

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.DatabaseError as err:
            raise IndexError_(f"{self.path}: backup index query failed: {err}") from err
