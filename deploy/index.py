"""The backup index: runs and changes in SQLite, ordered by sequence number.

"Most recent" always means the highest sequence number, never an mtime or a
name: the original judged by mtime, which ``copy2`` had copied from the source,
and retention deleted the newest backup.

The journal mode stays DELETE (no WAL) so that a read-only open creates no
file: ``--dry-run`` must leave the tree byte-identical.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from deploy.errors import DeployError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- deploy | bump | rollback | migrate
    actor TEXT NOT NULL,
    command TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    state TEXT NOT NULL,             -- running | done | failed | interrupted | undone
    undoes INTEGER,                  -- for a rollback: the run it undid
    categories TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL REFERENCES runs(id),
    category TEXT NOT NULL,
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,            -- create | update | delete
    backup TEXT,                     -- path relative to the tree; NULL when the target was absent
    old_sha256 TEXT,
    old_size INTEGER,
    old_mode INTEGER,
    new_sha256 TEXT,                 -- NULL when the change deletes the target
    new_size INTEGER,
    new_mode INTEGER,
    created TEXT NOT NULL,
    created_ts REAL NOT NULL,
    state TEXT NOT NULL,             -- planned | backed_up | applied | void | reverted | imported
    undone_by INTEGER,               -- the rollback run that undid this change
    reverts INTEGER,                 -- for a rollback's change: the change it reverted
    pruned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE INDEX IF NOT EXISTS changes_target ON changes(target, seq);
CREATE INDEX IF NOT EXISTS changes_category ON changes(category, seq);
CREATE INDEX IF NOT EXISTS changes_run ON changes(run, seq);
CREATE TABLE IF NOT EXISTS renders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    change_seq INTEGER NOT NULL REFERENCES changes(seq),
    category TEXT NOT NULL,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,              -- render number of this key: 1, 2, 3 ...
    template_sha256 TEXT NOT NULL,
    output_sha256 TEXT NOT NULL,
    output BLOB NOT NULL,            -- kept as the base of a later 3-way merge
    context_sha256 TEXT NOT NULL DEFAULT ''  -- the variables but deployed_at: the render cache
);
CREATE INDEX IF NOT EXISTS renders_key ON renders(category, key, n);
CREATE TABLE IF NOT EXISTS template_code (
    path TEXT PRIMARY KEY,           -- the template file
    key TEXT NOT NULL,               -- sha256 of what the code came from (deploy.render.Codes)
    code BLOB NOT NULL               -- marshalled compiled template code
);
"""


class RunRow(NamedTuple):
    id: int
    kind: str
    actor: str
    command: str
    pid: int
    started: str
    finished: str | None
    state: str
    undoes: int | None
    categories: str


class ChangeRow(NamedTuple):
    seq: int
    run: int
    category: str
    key: str
    target: str
    action: str
    backup: str | None
    old_sha256: str | None
    old_size: int | None
    old_mode: int | None
    new_sha256: str | None
    new_size: int | None
    new_mode: int | None
    created: str
    created_ts: float
    state: str
    undone_by: int | None
    reverts: int | None
    pruned: int


class RenderRow(NamedTuple):
    id: int
    change_seq: int
    category: str
    key: str
    n: int
    template_sha256: str
    output_sha256: str


class LatestRender(NamedTuple):
    """A key's newest render; ``change_seq`` is None when the key was never rendered."""

    change_seq: int | None
    template_sha256: str
    context_sha256: str
    output_sha256: str
    output: bytes

    def hit(self, template_sha256: str, context_sha256: str) -> bytes | None:
        """The output, if it came from this template and context and still verifies."""
        if self.change_seq is None or not self.context_sha256 \
                or (self.template_sha256, self.context_sha256) != (template_sha256,
                                                                   context_sha256):
            return None
        ok = hashlib.sha256(self.output).hexdigest() == self.output_sha256
        return self.output if ok else None


RUN_COLS = ", ".join(RunRow._fields)
CHANGE_COLS = ", ".join(ChangeRow._fields)
RENDER_COLS = ", ".join(RenderRow._fields)


class IndexError_(DeployError):
    """The index could not be read or written."""


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; first lets SQLite roll back a hot journal if there is one.

    A run killed (or failing) mid-commit leaves ``index.sqlite-journal`` behind, and a
    read-only connection cannot roll it back: every read then fails with "attempt to write
    a readonly database", and so did ``history`` and the read-only planning of every
    writing task, forever (found by the strace sweep). Rolling the journal back restores
    the last committed state, which is what any read-write open does first.
    """
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
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
    recover = sqlite3.connect(path, isolation_level=None)
    try:
        recover.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        recover.close()
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


class NoIndexYet(IndexError_):
    """The index file exists but holds no schema yet: the first run is creating it."""


class Index:
    """A thin typed wrapper over the SQLite index file."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        try:
            if readonly:
                self.db = _connect_readonly(path)
                if not self.db.execute(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
                ).fetchone():
                    self.db.close()
                    raise NoIndexYet(f"{path}: the backup index is being created")
            else:
                self.db = sqlite3.connect(path, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=DELETE")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(SCHEMA)
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone()  # reads the schema
        except sqlite3.DatabaseError as err:
            if hasattr(self, "db"):
                self.db.close()  # an unusable file must not leak its connection
            raise IndexError_(f"{path}: cannot use the backup index: {err}") from err

    def close(self) -> None:
        self.db.close()

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
            # SQLite may have rolled back by itself already (an I/O error mid-statement);
            # a second ROLLBACK would then raise and hide the first error.
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.DatabaseError:
                    pass
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.DatabaseError:
                    pass
            raise IndexError_(f"{self.path}: cannot commit the backup index: {err}") from err

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.DatabaseError as err:
            raise IndexError_(f"{self.path}: backup index query failed: {err}") from err

    def generation(self) -> tuple[int, int, int]:
        """Changes whenever any run starts, ends or records a change: (last run, last
        change, runs still running). A run only ever leaves ``running``, and a run that
        starts raises the last run, so the three cannot all come back to where they were.
        Three index lookups: it costs the same after years of history."""
        row = self.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM runs),"
            " (SELECT coalesce(max(seq), 0) FROM changes),"
            " (SELECT count(*) FROM runs WHERE state = 'running')").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- runs -------------------------------------------------------------------------------
    def add_run(self, kind: str, actor: str, command: str, pid: int, started: str,
                categories: Iterable[str], undoes: int | None = None) -> int:
        cur = self.execute(
            "INSERT INTO runs (kind, actor, command, pid, started, state, undoes, categories)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
            (kind, actor, command, pid, started, undoes, ",".join(sorted(set(categories)))),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(self, run: int, state: str, finished: str) -> None:
        self.execute("UPDATE runs SET state = ?, finished = ? WHERE id = ?", (state, finished, run))

    def run(self, run_id: int) -> RunRow | None:
        row = self.execute(f"SELECT {RUN_COLS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return RunRow(*row) if row else None

    def runs(self, limit: int | None = None, offset: int = 0) -> list[RunRow]:
        sql = f"SELECT {RUN_COLS} FROM runs ORDER BY id DESC"
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = (limit, offset)
        return [RunRow(*r) for r in self.execute(sql, params)]

    def running_runs(self) -> list[RunRow]:
        return [RunRow(*r) for r in self.execute(
            f"SELECT {RUN_COLS} FROM runs WHERE state = 'running' ORDER BY id")]

    def run_counts(self, run_id: int) -> int:
        row = self.execute(
            "SELECT count(*) FROM changes WHERE run = ? AND state IN ('applied', 'backed_up')",
            (run_id,)).fetchone()
        return int(row[0])

    # -- changes ----------------------------------------------------------------------------
    def add_change(self, **values: Any) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.execute(f"INSERT INTO changes ({cols}) VALUES ({marks})", tuple(values.values()))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_change_state(self, run: int, old: str, new: str) -> None:
        self.execute("UPDATE changes SET state = ? WHERE run = ? AND state = ?", (new, run, old))

    def set_seq_state(self, seq: int, state: str) -> None:
        self.execute("UPDATE changes SET state = ? WHERE seq = ?", (state, seq))

    def changes_of_run(self, run: int) -> list[ChangeRow]:
        return [ChangeRow(*r) for r in self.execute(
            f"SELECT {CHANGE_COLS} FROM changes WHERE run = ? ORDER BY seq", (run,))]

    def change(self, seq: int) -> ChangeRow | None:
        row = self.execute(f"SELECT {CHANGE_COLS} FROM changes WHERE seq = ?", (seq,)).fetchone()
        return ChangeRow(*row) if row else None

    def last_write(self, target: str) -> ChangeRow | None:
        """The newest change that left bytes in ``target`` (failed runs restored theirs)."""
        row = self.execute(
            f"SELECT {CHANGE_COLS} FROM changes WHERE target = ?"
            " AND state IN ('applied', 'backed_up') ORDER BY seq DESC LIMIT 1", (target,)
        ).fetchone()
        return ChangeRow(*row) if row else None

    def backups(self, category: str | None = None, target: str | None = None,
                limit: int | None = None) -> list[ChangeRow]:
        """Changes that hold a backup file, newest first."""
        sql = f"SELECT {CHANGE_COLS} FROM changes WHERE backup IS NOT NULL AND pruned = 0" \
              " AND state IN ('applied', 'backed_up', 'reverted', 'imported')"
        params: list[Any] = []
        if category is not None:
            sql += " AND category = ?"
            params.append(category)
        if target is not None:
            sql += " AND target = ?"
            params.append(target)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [ChangeRow(*r) for r in self.execute(sql, params)]

    def backup_count(self, category: str) -> int:
        row = self.execute(
            "SELECT count(*) FROM changes WHERE backup IS NOT NULL AND pruned = 0"
            " AND state IN ('applied', 'backed_up', 'reverted', 'imported') AND category = ?",
            (category,)
        ).fetchone()
        return int(row[0])

    def undoable_runs(self, categories: Iterable[str], key: str | None = None,
                      keys: Iterable[str] | None = None, limit: int = 1) -> list[int]:
        """Runs, newest first, with a not-yet-undone applied change in these categories.

        Rollbacks themselves are skipped: undoing one is ``rollback.release --run``.
        """
        cats = list(categories)
        sql = (
            "SELECT DISTINCT c.run FROM changes c JOIN runs r ON r.id = c.run"
            f" WHERE c.category IN ({', '.join('?' for _ in cats)})"
            " AND c.state IN ('applied', 'backed_up') AND c.undone_by IS NULL"
            " AND r.kind != 'rollback' AND r.state IN ('done', 'interrupted')"
        )
        params: list[Any] = list(cats)
        if key is not None:
            sql += " AND c.key = ?"
            params.append(key)
        if keys is not None:
            key_list = list(keys)
            sql += f" AND c.key IN ({', '.join('?' for _ in key_list)})"
            params.extend(key_list)
        sql += " ORDER BY c.run DESC LIMIT ?"
        params.append(limit)
        return [int(r[0]) for r in self.execute(sql, params)]

    def mark_undone(self, seqs: Iterable[int], by: int | None) -> None:
        for seq in seqs:
            self.execute("UPDATE changes SET undone_by = ? WHERE seq = ?", (by, seq))

    def refresh_run_state(self, run: int) -> None:
        """A finished run whose every applied change is undone reads ``undone``, else back."""
        row = self.run(run)
        if row is None or row.state not in ("done", "undone", "interrupted"):
            return
        left = self.execute(
            "SELECT count(*) FROM changes WHERE run = ? AND state IN ('applied', 'backed_up')"
            " AND undone_by IS NULL", (run,)).fetchone()[0]
        if left == 0 and row.state != "undone":
            self.execute("UPDATE runs SET state = 'undone' WHERE id = ?", (run,))
        elif left and row.state == "undone":
            self.execute("UPDATE runs SET state = 'done' WHERE id = ?", (run,))

    def imported(self, target: str, sha256: str) -> bool:
        """Whether a legacy backup with these bytes for this target was migrated already."""
        row = self.execute("SELECT 1 FROM changes WHERE state = 'imported' AND target = ?"
                           " AND old_sha256 = ? LIMIT 1", (target, sha256)).fetchone()
        return row is not None

    def mark_pruned(self, seq: int) -> None:
        self.execute("UPDATE changes SET pruned = 1 WHERE seq = ?", (seq,))

    # -- renders ----------------------------------------------------------------------------
    def add_render(self, change_seq: int, category: str, key: str, template_sha256: str,
                   output_sha256: str, output: bytes, context_sha256: str = "") -> int:
        row = self.execute(
            "SELECT coalesce(max(n), 0) FROM renders WHERE category = ? AND key = ?",
            (category, key)).fetchone()
        n = int(row[0]) + 1
        self.execute(
            "INSERT INTO renders (change_seq, category, key, n, template_sha256, output_sha256,"
            " output, context_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (change_seq, category, key, n, template_sha256, output_sha256, output,
             context_sha256))
        return n

    def latest_render(self, category: str, key: str) -> LatestRender:
        """The newest render of ``key`` (empty when there is none), for the render cache and
        the merge base both, in one query."""
        row = self.execute(
            "SELECT change_seq, template_sha256, context_sha256, output_sha256, output"
            " FROM renders WHERE category = ? AND key = ? ORDER BY n DESC LIMIT 1",
            (category, key)).fetchone()
        if row is None:
            return LatestRender(None, "", "", "", b"")
        return LatestRender(int(row[0]), row[1], row[2], row[3], bytes(row[4]))

    def template_code(self, path: str) -> tuple[str, bytes] | None:
        """The (key, code) stored for the template file ``path``; None if there is none
        (an index written before this table existed has none either)."""
        try:
            row = self.db.execute("SELECT key, code FROM template_code WHERE path = ?",
                                  (path,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return (str(row[0]), bytes(row[1])) if row else None

    def put_template_code(self, path: str, key: str, code: bytes) -> None:
        self.execute("INSERT OR REPLACE INTO template_code (path, key, code) VALUES (?, ?, ?)",
                     (path, key, code))

    def render_of_change(self, category: str, key: str, change_seq: int) -> bytes | None:
        row = self.execute(
            "SELECT output FROM renders WHERE category = ? AND key = ? AND change_seq = ?",
            (category, key, change_seq)).fetchone()
        return bytes(row[0]) if row else None

    def renders(self, category: str, key: str) -> list[RenderRow]:
        return [RenderRow(*r) for r in self.execute(
            f"SELECT {RENDER_COLS} FROM renders WHERE category = ? AND key = ? ORDER BY n DESC",
            (category, key))]

    def render_output(self, category: str, key: str, n: int | None = None,
                      sha256: str | None = None) -> bytes | None:
        """Render ``n``'s output, or the newest render whose output has ``sha256``."""
        if n is not None:
            row = self.execute(
                "SELECT output FROM renders WHERE category = ? AND key = ? AND n = ?",
                (category, key, n)).fetchone()
        else:
            row = self.execute(
                "SELECT output FROM renders WHERE category = ? AND key = ? AND output_sha256 = ?"
                " ORDER BY n DESC LIMIT 1", (category, key, sha256)).fetchone()
        return bytes(row[0]) if row else None

    def render_change(self, category: str, key: str, n: int) -> int | None:
        row = self.execute(
            "SELECT change_seq FROM renders WHERE category = ? AND key = ? AND n = ?",
            (category, key, n)).fetchone()
        return int(row[0]) if row else None
