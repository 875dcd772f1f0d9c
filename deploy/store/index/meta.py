"""Meta: the index's own key-value facts (its schema version, the last verify)."""

from __future__ import annotations

from deploy.store.index.db import Db


class Meta:
    def __init__(self, db: Db) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
