"""Retention: which backups ``backups.prune`` (and the framework's rotation) may delete.

Age and order come from the index (creation time and sequence number), never
from file mtimes: the original copied mtimes from the source with ``copy2``
and so deleted the newest backup. The newest backup of every target always
stays.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

from deploy import categories
from deploy.config import BackupSettings
from deploy.store import ChangeRow

DAY = 86400.0


def select(rows: Iterable[ChangeRow], settings: BackupSettings, now: float | None = None,
           *, only_category: str | None = None) -> list[ChangeRow]:
    """Backups to delete: beyond the newest ``max`` of their target, or older than retention.

    ``max`` is the setting the category table names for the row's category
    (``framework_keep`` for the framework, ``max_backups_per_type`` otherwise).
    """
    now = time.time() if now is None else now
    by_target: dict[str, list[ChangeRow]] = defaultdict(list)
    for row in rows:
        if only_category is None or row.category == only_category:
            by_target[row.target].append(row)
    doomed = []
    for group in by_target.values():
        group.sort(key=lambda r: r.seq, reverse=True)
        for rank, row in enumerate(group):
            if rank == 0:
                continue
            keep = int(getattr(settings, categories.get(row.category).keep))
            too_many = rank >= max(keep, 1)
            too_old = now - row.created_ts > settings.retention_days * DAY
            if too_many or too_old:
                doomed.append(row)
    return sorted(doomed, key=lambda r: r.seq)
