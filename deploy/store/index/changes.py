"""Changes: one row per target a run changes, its backup, and the state it reached."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from deploy.states import ChangeState
from deploy.store.index.db import Db
from deploy.store.index.rows import (
    HAS_BACKUP,
    IMPORTED,
    IS_LIVE,
    RUN_OF_PROJECT,
    WROTE,
    ChangeRow,
)


class Changes:
    def __init__(self, db: Db) -> None:
        self.db = db

    def add(self, *, run: int, category: str, key: str, target: str, action: str,
            backup: str | None, old_sha256: str | None, old_size: int | None,
            old_mode: int | None, created: str, created_ts: float, state: ChangeState,
            old_owner: tuple[int, int] | None = None,
            new_sha256: str | None = None, new_size: int | None = None,
            new_mode: int | None = None, reverts: int | None = None) -> int:
        values = {"run": run, "category": category, "key": key, "target": target,
                  "action": action, "backup": backup, "old_sha256": old_sha256,
                  "old_size": old_size, "old_mode": old_mode, "new_sha256": new_sha256,
                  "new_size": new_size, "new_mode": new_mode, "created": created,
                  "created_ts": created_ts, "state": state, "reverts": reverts,
                  "old_uid": old_owner[0] if old_owner else None,
                  "old_gid": old_owner[1] if old_owner else None}
        cur = self.db.execute(
            f"INSERT INTO changes ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            tuple(values.values()))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def move(self, run: int, old: ChangeState, new: ChangeState) -> None:
        """Every change of ``run`` in state ``old`` moves to ``new`` (one phase of a run)."""
        self.db.execute("UPDATE changes SET state = ? WHERE run = ? AND state = ?",
                        (new, run, old))

    def set_state(self, seq: int, state: ChangeState) -> None:
        self.db.execute("UPDATE changes SET state = ? WHERE seq = ?", (state, seq))

    def of_run(self, run: int) -> list[ChangeRow]:
        return [ChangeRow(*r) for r in self.db.execute(
            f"SELECT {self.db.change_cols} FROM changes WHERE run = ? ORDER BY seq", (run,))]

    def get(self, seq: int) -> ChangeRow | None:
        row = self.db.execute(f"SELECT {self.db.change_cols} FROM changes WHERE seq = ?",
                              (seq,)).fetchone()
        return ChangeRow(*row) if row else None

    def last_write(self, target: str, before: int | None = None) -> ChangeRow | None:
        """The newest change that left bytes in ``target`` or accepted the bytes there
        (failed runs restored theirs), and that no rollback undid; ``before``: the newest
        before that sequence number.

        An undone change is passed over: its rollback either wrote the old bytes back (a
        newer change) or found them there already, and an undone acceptance is withdrawn.
        """
        sql = (f"SELECT {self.db.change_cols} FROM changes WHERE target = ? AND {IS_LIVE}"
               " AND undone_by IS NULL")
        params: tuple[Any, ...] = (target,)
        if before is not None:
            sql += " AND seq < ?"
            params = (target, before)
        row = self.db.execute(sql + " ORDER BY seq DESC LIMIT 1", params).fetchone()
        return ChangeRow(*row) if row else None

    def keys(self, category: str) -> set[str]:
        """Every key this category ever recorded a change for."""
        return {str(r[0]) for r in self.db.execute(
            "SELECT DISTINCT key FROM changes WHERE category = ?", (category,))}

    def backups(self, category: str | None = None, target: str | None = None,
                limit: int | None = None, project: str | None = None) -> list[ChangeRow]:
        """Changes that hold a backup file, newest first (of ``project``'s runs if given)."""
        sql = f"SELECT {self.db.change_cols} FROM changes WHERE {HAS_BACKUP}"
        params: list[Any] = []
        if project is not None:
            sql += f" AND {RUN_OF_PROJECT}"
            params.append(project)
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
        return [ChangeRow(*r) for r in self.db.execute(sql, params)]

    def for_retention(self, category: str | None = None) -> list[ChangeRow]:
        """What retention judges (``deploy.retention.verdicts``), oldest first: every row
        holding a backup, and every undoable row (live, not undone, it wrote something),
        which may have none (a created target) or have lost it to an earlier prune; of one
        category when given."""
        sql = (f"SELECT {self.db.change_cols} FROM changes WHERE (({HAS_BACKUP}) OR ({IS_LIVE}"
               f" AND undone_by IS NULL AND {WROTE}))")
        params: tuple[str, ...] = ()
        if category is not None:
            sql += " AND category = ?"
            params = (category,)
        return [ChangeRow(*r) for r in self.db.execute(sql + " ORDER BY seq", params)]

    def backup_count(self, category: str, project: str | None = None) -> int:
        sql = f"SELECT count(*) FROM changes WHERE {HAS_BACKUP} AND category = ?"
        params: list[Any] = [category]
        if project is not None:
            sql += f" AND {RUN_OF_PROJECT}"
            params.append(project)
        row = self.db.execute(sql, params).fetchone()
        return int(row[0])

    def mark_undone(self, seqs: Iterable[int], by: int | None) -> None:
        for seq in seqs:
            self.db.execute("UPDATE changes SET undone_by = ? WHERE seq = ?", (by, seq))

    def imported(self, target: str, sha256: str) -> bool:
        """Whether a legacy backup with these bytes for this target was migrated already."""
        row = self.db.execute(f"SELECT 1 FROM changes WHERE {IMPORTED} AND target = ?"
                              " AND old_sha256 = ? LIMIT 1", (target, sha256)).fetchone()
        return row is not None

    def imported_copy(self, target: str, sha256: str) -> ChangeRow | None:
        """The newest migrated backup of ``target`` holding these bytes that is still kept
        (not pruned), or None."""
        row = self.db.execute(
            f"SELECT {self.db.change_cols} FROM changes WHERE {IMPORTED} AND target = ?"
            " AND old_sha256 = ? AND pruned = 0 ORDER BY seq DESC LIMIT 1",
            (target, sha256)).fetchone()
        return ChangeRow(*row) if row else None

    def names_target(self, target: str) -> bool:
        """Whether any row, of any run and state, has ``target`` as its target."""
        return self.db.execute("SELECT 1 FROM changes WHERE target = ? LIMIT 1",
                               (target,)).fetchone() is not None

    def backup_known(self, backup: str) -> bool:
        """Whether any row, live or pruned, ever named the backup file ``backup``."""
        return self.db.execute("SELECT 1 FROM changes WHERE backup = ? LIMIT 1",
                               (backup,)).fetchone() is not None

    def vouched_backups(self) -> set[str]:
        """The backup files (relative to the tree) that some row holds: not pruned, in a
        state that keeps its backup. Every other file in the category folders is an orphan."""
        return {str(r[0]) for r in self.db.execute(
            f"SELECT DISTINCT backup FROM changes WHERE {HAS_BACKUP}")}

    def naming(self, backup: str) -> ChangeRow | None:
        """The newest row, in any state, that names the backup file ``backup``."""
        row = self.db.execute(f"SELECT {self.db.change_cols} FROM changes WHERE backup = ?"
                              " ORDER BY seq DESC LIMIT 1", (backup,)).fetchone()
        return ChangeRow(*row) if row else None

    def backup_holders(self) -> Counter[str]:
        """How many rows hold each backup file (more than one only in an index from before
        names were unique): a prune keeps a file another row still holds."""
        return Counter({str(r[0]): int(r[1]) for r in self.db.execute(
            f"SELECT backup, count(*) FROM changes WHERE {HAS_BACKUP} GROUP BY backup")})

    def mark_pruned(self, seqs: Iterable[int], value: int = 1) -> None:
        """Set ``pruned`` of these rows: 2 while their files are being removed, 1 once
        they are gone (``deploy.store.prune``)."""
        self.db.executemany("UPDATE changes SET pruned = ? WHERE seq = ?",
                            [(value, seq) for seq in seqs])

    def pending_prune(self, value: int) -> list[ChangeRow]:
        """The rows a prune marked with ``value`` (pending) and had not finished."""
        return [ChangeRow(*r) for r in self.db.execute(
            f"SELECT {self.db.change_cols} FROM changes WHERE pruned = ? ORDER BY seq",
            (value,))]
