"""Issue 13, "Integrity": ``backups.verify`` names every kind of damage to the tree and its
index, and ``backups.reindex`` rebuilds a lost or corrupt index from the tree, all or
nothing under SIGKILL. Each faulty tree counts in the reliability ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


def test_the_index_tables_come_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Creating the index is one transaction: a failure after the first CREATE leaves no
    table at all (a reindex killed between two CREATEs left ``runs`` without ``changes``,
    and every read of the index failed)."""
    from deploy.store.index import Index, IndexError_, db

    monkeypatch.setattr(db, "SCHEMA", db.SCHEMA + "\nCREATE TABLE runs (id INTEGER);\n")
    path = tmp_path / "index.sqlite"

    with pytest.raises(IndexError_):
        Index(path)

    left = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert left == []
