"""Runs: one row per invocation that writes, and the state it ended in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deploy.provenance import Provenance
from deploy.states import RunKind, RunState
from deploy.store.index.db import Db
from deploy.store.index.rows import (
    IS_LIVE,
    IS_LIVE_C,
    OF_PROJECT,
    OF_PROJECT_R,
    RUN_UNDOABLE,
    RUNNING,
    WROTE,
    WROTE_C,
    RunRow,
)


class Runs:
    def __init__(self, db: Db) -> None:
        self.db = db

    def add(self, kind: RunKind, actor: str, command: str, pid: int, started: str,
            categories: Iterable[str], undoes: int | None = None,
            project: str | None = None, provenance: Provenance | None = None) -> int:
        came = provenance or Provenance()
        cur = self.db.execute(
            "INSERT INTO runs (kind, actor, command, pid, started, state, undoes, categories,"
            " project, git_commit, git_ref, ci_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, actor, command, pid, started, RunState.RUNNING, undoes,
             ",".join(sorted(set(categories))), project, came.commit, came.ref, came.ci_url))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish(self, run: int, state: RunState, finished: str) -> None:
        self.db.execute("UPDATE runs SET state = ?, finished = ? WHERE id = ?",
                        (state, finished, run))

    def get(self, run_id: int) -> RunRow | None:
        row = self.db.execute(f"SELECT {self.db.run_cols} FROM runs WHERE id = ?",
                              (run_id,)).fetchone()
        return RunRow(*row) if row else None

    def newest(self, limit: int | None = None, offset: int = 0,
               project: str | None = None) -> list[RunRow]:
        """Runs, newest first; only ``project``'s (and those from before runs named their
        project) when given."""
        sql = f"SELECT {self.db.run_cols} FROM runs"
        params: list[Any] = []
        if project is not None:
            sql += f" WHERE {OF_PROJECT}"
            params.append(project)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [RunRow(*r) for r in self.db.execute(sql, params)]

    def count(self) -> int:
        """How many runs the index holds, of every project."""
        return int(self.db.execute("SELECT count(*) FROM runs").fetchone()[0])

    def set_kept(self, run: int, kept: bool) -> None:
        """Mark a run kept (``history.keep``) or clear the mark."""
        self.db.execute("UPDATE runs SET kept = ? WHERE id = ?", (1 if kept else None, run))

    def running(self) -> list[RunRow]:
        return [RunRow(*r) for r in self.db.execute(
            f"SELECT {self.db.run_cols} FROM runs WHERE {RUNNING} ORDER BY id")]

    def changed(self, run_id: int) -> int:
        """How many of the run's changes left their bytes in their targets (an accepted
        target's row wrote nothing)."""
        row = self.db.execute(f"SELECT count(*) FROM changes WHERE run = ? AND {IS_LIVE}"
                              f" AND {WROTE}", (run_id,)).fetchone()
        return int(row[0])

    def commits(self, prefix: str, project: str | None = None) -> list[str]:
        """The distinct commits that runs (of ``project`` when given) were made from and
        that start with ``prefix``, newest run first."""
        sql = ("SELECT git_commit, max(id) AS newest FROM runs"
               " WHERE git_commit IS NOT NULL AND substr(git_commit, 1, ?) = ?")
        params: list[Any] = [len(prefix), prefix]
        if project is not None:
            sql += f" AND {OF_PROJECT}"
            params.append(project)
        sql += " GROUP BY git_commit ORDER BY newest DESC"
        return [str(r[0]) for r in self.db.execute(sql, params)]

    def undoable(self, categories: Iterable[str], key: str | None = None,
                 keys: Iterable[str] | None = None, limit: int = 1,
                 project: str | None = None, commit: str | None = None) -> list[int]:
        """Runs, newest first, with a not-yet-undone applied change in these categories
        (of ``project`` when given: two clones never step back each other's runs).

        Rollbacks themselves are skipped: undoing one is ``rollback.release --run``; so are
        runs that only accepted targets (``templates.adopt``): they changed nothing, and
        withdrawing one is ``rollback.release --run`` too.
        """
        cats = list(categories)
        sql = (
            "SELECT DISTINCT c.run FROM changes c JOIN runs r ON r.id = c.run"
            f" WHERE c.category IN ({', '.join('?' for _ in cats)})"
            f" AND {IS_LIVE_C} AND {WROTE_C} AND c.undone_by IS NULL"
            f" AND r.kind != '{RunKind.ROLLBACK}' AND {RUN_UNDOABLE}"
        )
        params: list[Any] = list(cats)
        if project is not None:
            sql += f" AND {OF_PROJECT_R}"
            params.append(project)
        if commit is not None:
            sql += " AND r.git_commit = ?"
            params.append(commit)
        if key is not None:
            sql += " AND c.key = ?"
            params.append(key)
        if keys is not None:
            key_list = list(keys)
            sql += f" AND c.key IN ({', '.join('?' for _ in key_list)})"
            params.extend(key_list)
        sql += " ORDER BY c.run DESC LIMIT ?"
        params.append(limit)
        return [int(r[0]) for r in self.db.execute(sql, params)]

    def refresh_state(self, run: int) -> None:
        """A finished run whose every applied change is undone reads ``undone``, else back."""
        row = self.get(run)
        if row is None or row.state not in (RunState.DONE, RunState.UNDONE,
                                            RunState.INTERRUPTED):
            return
        left = self.db.execute(
            f"SELECT count(*) FROM changes WHERE run = ? AND {IS_LIVE} AND undone_by IS NULL",
            (run,)).fetchone()[0]
        if left == 0 and row.state != RunState.UNDONE:
            self.db.execute("UPDATE runs SET state = ? WHERE id = ?", (RunState.UNDONE, run))
        elif left and row.state == RunState.UNDONE:
            self.db.execute("UPDATE runs SET state = ? WHERE id = ?", (RunState.DONE, run))
