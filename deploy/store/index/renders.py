"""Renders: every output this toolkit rendered into a target, and each template's code.

The stored output is the base of a later 3-way merge and the render cache's
hit; the compiled code is Jinja's bytecode-cache idea kept in the index.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from deploy.store.index.db import Db
from deploy.store.index.rows import NO_RENDER, RENDER_COLS, LatestRender, RenderRow


class Renders:
    def __init__(self, db: Db) -> None:
        self.db = db

    def add(self, change_seq: int, category: str, key: str, template_sha256: str,
            output_sha256: str, output: bytes, context_sha256: str = "") -> int:
        """Record a render as the next render number of its key; returns that number."""
        row = self.db.execute(
            "SELECT coalesce(max(n), 0) FROM renders WHERE category = ? AND key = ?",
            (category, key)).fetchone()
        n = int(row[0]) + 1
        self.db.execute(
            "INSERT INTO renders (change_seq, category, key, n, template_sha256, output_sha256,"
            " output, context_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (change_seq, category, key, n, template_sha256, output_sha256, output,
             context_sha256))
        return n

    def _one(self, where: str, params: tuple[Any, ...]) -> LatestRender | None:
        row = self.db.execute(
            "SELECT change_seq, template_sha256, context_sha256, output_sha256, output"
            f" FROM renders WHERE category = ? AND key = ? {where} ORDER BY n DESC LIMIT 1",
            params).fetchone()
        if row is None:
            return None
        return LatestRender(int(row[0]), row[1], row[2], row[3], bytes(row[4]))

    def latest(self, category: str, key: str) -> LatestRender:
        """The newest render of ``key`` (empty when there is none), for the render cache and
        the merge base both, in one query."""
        return self._one("", (category, key)) or NO_RENDER

    def of_change(self, category: str, key: str, change_seq: int) -> LatestRender | None:
        """The render recorded with that very change, if it recorded one."""
        return self._one("AND change_seq = ?", (category, key, change_seq))

    def with_output(self, category: str, key: str, sha256: str) -> LatestRender | None:
        """The newest render of ``key`` whose output has ``sha256``."""
        return self._one("AND output_sha256 = ?", (category, key, sha256))

    def of_key(self, category: str, key: str) -> list[RenderRow]:
        """Every render of ``key``, newest first."""
        return [RenderRow(*r) for r in self.db.execute(
            f"SELECT {RENDER_COLS} FROM renders WHERE category = ? AND key = ? ORDER BY n DESC",
            (category, key))]

    def output(self, category: str, key: str, n: int | None = None,
               sha256: str | None = None) -> bytes | None:
        """Render ``n``'s output, or the newest render whose output has ``sha256``."""
        if n is not None:
            row = self.db.execute(
                "SELECT output FROM renders WHERE category = ? AND key = ? AND n = ?",
                (category, key, n)).fetchone()
        else:
            row = self.db.execute(
                "SELECT output FROM renders WHERE category = ? AND key = ? AND output_sha256 = ?"
                " ORDER BY n DESC LIMIT 1", (category, key, sha256)).fetchone()
        return bytes(row[0]) if row else None

    def change_of(self, category: str, key: str, n: int) -> int | None:
        """The change that wrote render ``n``."""
        row = self.db.execute(
            "SELECT change_seq FROM renders WHERE category = ? AND key = ? AND n = ?",
            (category, key, n)).fetchone()
        return int(row[0]) if row else None

    def code(self, path: str) -> tuple[str, bytes] | None:
        """The (key, code) stored for the template file ``path``; None if there is none
        (an index written before this table existed has none either)."""
        try:
            row = self.db.db.execute("SELECT key, code FROM template_code WHERE path = ?",
                                     (path,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return (str(row[0]), bytes(row[1])) if row else None

    def put_code(self, path: str, key: str, code: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO template_code (path, key, code) VALUES (?, ?, ?)",
                        (path, key, code))
