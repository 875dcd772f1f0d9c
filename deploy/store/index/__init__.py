"""The backup index: runs and changes in SQLite, ordered by sequence number.

"Most recent" always means the highest sequence number, never an mtime or a
name: the original judged by mtime, which ``copy2`` had copied from the source,
and retention deleted the newest backup.

``db`` opens the file and commits, ``schema`` holds the tables, ``rows`` the
records and the SQL conditions named once; ``runs``, ``changes``, ``renders``
and ``meta`` hold the queries of each table. :class:`Index` puts them together:
``index.runs.newest()``, ``index.changes.last_write(target)``, ``index.renders.latest(...)``.
"""

from __future__ import annotations

from pathlib import Path

from deploy.states import RunState
from deploy.store.index.changes import Changes
from deploy.store.index.db import Db, IndexError_, NoIndexYet
from deploy.store.index.meta import Meta
from deploy.store.index.renders import Renders
from deploy.store.index.rows import (
    CHANGE_COLS,
    ChangeRow,
    LatestRender,
    RenderRow,
    RunRow,
)
from deploy.store.index.runs import Runs
from deploy.store.index.schema import SCHEMA_VERSION

__all__ = ["CHANGE_COLS", "SCHEMA_VERSION", "ChangeRow", "Index", "IndexError_", "LatestRender",
           "NoIndexYet", "RenderRow", "RunRow"]


class Index(Db):
    """The index file, with its queries grouped by table."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        super().__init__(path, readonly=readonly)
        self.runs = Runs(self)
        self.changes = Changes(self)
        self.renders = Renders(self)
        self.meta = Meta(self)

    def generation(self) -> tuple[int, int, int]:
        """Changes whenever any run starts, ends or records a change: (last run, last
        change, runs still running). A run only ever leaves ``running``, and a run that
        starts raises the last run, so the three cannot all come back to where they were.
        Three index lookups: it costs the same after years of history."""
        row = self.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM runs),"
            " (SELECT coalesce(max(seq), 0) FROM changes),"
            " (SELECT count(*) FROM runs WHERE state = ?)", (RunState.RUNNING,)).fetchone()
        return int(row[0]), int(row[1]), int(row[2])
