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
    OF_PROJECT,
    RUN_OF_PROJECT,
    WROTE,
    ZST,
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
        """The backup files (relative to the tree, as stored: ``.zst`` when compressed) that
        some row holds: not pruned, in a state that keeps its backup. Every other file in
        the category folders is an orphan."""
        return {str(r[0]) + (ZST if r[1] else "") for r in self.db.execute(
            f"SELECT DISTINCT backup, compressed FROM changes WHERE {HAS_BACKUP}")}

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

    def backup_shared(self, backup: str, seq: int) -> bool:
        """Whether a row other than ``seq`` still holds the backup file ``backup``."""
        return self.db.execute(f"SELECT 1 FROM changes WHERE backup = ? AND seq != ? AND "
                               f"{HAS_BACKUP} LIMIT 1", (backup, seq)).fetchone() is not None

    def holding(self, sha256: str, size: int | None = None) -> list[ChangeRow]:
        """The rows that hold a backup of these bytes (plain or compressed), newest first:
        the candidates of a dedupe link, and the names a shared inode may have."""
        sql = f"SELECT {self.db.change_cols} FROM changes WHERE old_sha256 = ? AND {HAS_BACKUP}"
        params: list[Any] = [sha256]
        if size is not None:
            sql += " AND old_size = ?"
            params.append(size)
        return [ChangeRow(*r) for r in self.db.execute(sql + " ORDER BY seq DESC", params)]

    def named_with(self, sha256: str) -> list[ChangeRow]:
        """Every row, in any state, live or pruned, that names a backup of these bytes."""
        return [ChangeRow(*r) for r in self.db.execute(
            f"SELECT {self.db.change_cols} FROM changes WHERE old_sha256 = ?"
            " AND backup IS NOT NULL", (sha256,))]

    def set_stored(self, seq: int, *, compressed: bool, stored_size: int,
                   blob: int | None) -> None:
        """Record how a backup's file is stored now (compressed or not, its size, the row
        whose write made its inode)."""
        self.db.execute("UPDATE changes SET compressed = ?, stored_size = ?, blob = ?"
                        " WHERE seq = ?", (int(compressed), stored_size, blob, seq))

    def usage(self, project: str | None = None
              ) -> tuple[dict[str, tuple[int, int, int, int, str | None, str | None]], int]:
        """Per category (of ``project``'s runs when given): (backups, logical bytes,
        physical bytes, compressed, oldest, newest); and the whole tree's physical bytes
        (every project). From the index alone (status never stats or hashes): one scan of
        the rows, and lookups of the linked ones only (``changes_blob``).

        Physical bytes count each inode once. A row whose ``blob`` is NULL wrote its own
        file (one inode: its stored size). Rows that share a file carry the seq of the row
        that wrote it (and whether it is the .zst, ``compressed``): each such group counts
        once, unless that row is among the backups counted and holds the same form.
        """
        mine, params = "1", []
        if project is not None and self.db.execute(
                f"SELECT 1 FROM runs WHERE NOT {OF_PROJECT} LIMIT 1", (project,)).fetchone():
            # Only when another project has runs here: testing each row's run and grouping
            # by it cost half the scan (100,000 rows: 86 ms against 45).
            mine, params = f"(CASE WHEN {RUN_OF_PROJECT} THEN 1 ELSE 0 END)", [project]
        size = "coalesce(stored_size, old_size, 0)"
        out: dict[str, tuple[int, int, int, int, str | None, str | None]] = {}
        tree = 0
        for r in self.db.execute(
                f"SELECT category, {mine}, count(*), coalesce(sum(old_size), 0),"
                " coalesce(sum(coalesce(compressed, 0)), 0), min(created), max(created),"
                f" coalesce(sum(CASE WHEN blob IS NULL THEN {size} END), 0)"
                # By category alone when mine is a constant: one walk of changes_category;
                # a second key, even a constant one, costs a sort of every row.
                f" FROM changes WHERE {HAS_BACKUP} GROUP BY {'1, 2' if params else '1'}",
                params):
            tree += int(r[7])
            if r[1]:
                out[str(r[0])] = (int(r[2]), int(r[3]), int(r[7]), int(r[4]), r[5], r[6])
        shared = self._shared(mine, params)
        for category, extra in _unowned(shared, {r[0]: r for r in shared}, by_category=True):
            n, logical, physical, zst, oldest, newest = out[category]
            out[category] = (n, logical, physical + extra, zst, oldest, newest)
        every = self._shared("1", []) if params else shared
        return out, tree + sum(x for _all, x in _unowned(every, {r[0]: r for r in every},
                                                          by_category=False))

    def _shared(self, mine: str, params: list[Any]) -> list[tuple[int, str, int, int, int]]:
        """The rows that share a file (``blob`` set, read through ``changes_blob``) and the
        rows that wrote those files: (seq, category, blob or 0, compressed, stored size),
        of ``mine``'s rows."""
        linked = [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in
                  self.db.execute(
                      "SELECT seq, category, blob, coalesce(compressed, 0),"
                      f" coalesce(stored_size, old_size, 0) FROM changes WHERE {mine} AND"
                      f" blob IS NOT NULL AND {HAS_BACKUP}", params)]
        owners = sorted({r[2] for r in linked})
        found = []
        for start in range(0, len(owners), 500):
            chunk = owners[start:start + 500]
            found += [(int(r[0]), str(r[1]), 0, int(r[2]), int(r[3])) for r in self.db.execute(
                "SELECT seq, category, coalesce(compressed, 0), coalesce(stored_size,"
                f" old_size, 0) FROM changes WHERE {mine} AND blob IS NULL AND {HAS_BACKUP}"
                f" AND seq IN ({', '.join('?' for _ in chunk)})", [*params, *chunk])]
        return linked + found


def _unowned(rows: list[tuple[int, str, int, int, int]],
             by_seq: dict[int, tuple[int, str, int, int, int]], *, by_category: bool
             ) -> list[tuple[str, int]]:
    """Per category (or for the tree, ``""``): the bytes of each file linked rows share
    whose writer is not counted already (not among the rows, or holding the other form)."""
    groups: dict[tuple[str, int, int], int] = {}
    for _seq, category, blob, zst, size in rows:
        if not blob:
            continue
        owner = by_seq.get(blob)
        if owner is not None and owner[3] == zst and (not by_category or owner[1] == category):
            continue
        key = (category if by_category else "", blob, zst)
        groups[key] = max(groups.get(key, 0), size)
    totals: dict[str, int] = {}
    for (category, _blob, _zst), size in groups.items():
        totals[category] = totals.get(category, 0) + size
    return sorted(totals.items())
