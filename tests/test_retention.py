"""Retention decides from the index's sequence numbers and times, never from mtimes."""

from __future__ import annotations

from deploy.config import BackupSettings
from deploy.retention import DAY, select
from deploy.store.index import ChangeRow

NOW = 1_800_000_000.0


def row(seq: int, target: str = "/t", age_days: float = 0, category: str = "scripts") -> ChangeRow:
    return ChangeRow(seq=seq, run=seq, category=category, key="k", target=target,
                     action="update", backup=f"{category}/b{seq}", old_sha256="x", old_size=1,
                     old_mode=0o644, new_sha256="y", new_size=1, new_mode=0o644, created="",
                     created_ts=NOW - age_days * DAY, state="applied", undone_by=None,
                     reverts=None, pruned=0)


def test_keeps_newest_by_sequence_per_target() -> None:
    """Beyond max per target, the lowest sequence numbers go, whatever their times say."""
    rows = [row(1, age_days=0), row(2, age_days=5), row(3, age_days=1), row(4, "/u")]

    doomed = select(rows, BackupSettings(max_backups_per_type=2), NOW)

    assert [r.seq for r in doomed] == [1]


def test_old_backups_go_but_the_newest_stays() -> None:
    """Older than retention_days may go, but never a target's newest backup."""
    rows = [row(1, age_days=90), row(2, age_days=60), row(3, age_days=1)]
    lone = [row(7, "/lone", age_days=400)]

    doomed = select(rows + lone, BackupSettings(retention_days=30), NOW)

    assert [r.seq for r in doomed] == [1, 2]


def test_framework_uses_framework_keep() -> None:
    """Framework backups keep framework_keep (2), newest by sequence."""
    rows = [row(i, "/fw", category="framework") for i in (5, 9, 7, 3)]

    doomed = select(rows, BackupSettings(framework_keep=2), NOW, only_category="framework")

    assert sorted(r.seq for r in doomed) == [3, 5]
