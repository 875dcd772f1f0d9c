"""Recovery: a run a kill left ``running`` is recorded as ``interrupted``, its debris cleaned.

Each of its targets holds the old or the new bytes (the durable order sees to
that); its backups let it be rolled back like any run.
"""

from __future__ import annotations

import os
from pathlib import Path

from deploy import fsio
from deploy.states import ChangeState, RunState
from deploy.store.index import ChangeRow, Index
from deploy.store.tree import Store, now_iso


def recover(store: Store, index: Index) -> tuple[int, ...]:
    """Record runs a kill left as ``running`` as ``interrupted``; returns their ids."""
    found = []
    for run in index.runs.running():
        changes = index.changes.of_run(run.id)
        for row in changes:
            target = Path(row.target)
            fsio.remove_temps(target.parent, target.name)
            if row.backup:
                backup = store.tree / row.backup
                fsio.remove_temps(backup.parent, backup.name)
                if row.state == ChangeState.PLANNED:
                    # Never confirmed: the target was not touched, the copy is spare.
                    try:
                        os.unlink(backup)
                    except FileNotFoundError:
                        pass
        with index.transaction():
            index.changes.move(run.id, ChangeState.PLANNED, ChangeState.VOID)
            settle(index, changes)
            index.runs.finish(run.id, RunState.INTERRUPTED, now_iso())
        found.append(run.id)
    return tuple(found)


def settle(index: Index, changes: list[ChangeRow]) -> None:
    """Mark a cut-short run's ``backed_up`` changes whose target still holds the old bytes
    and mode as ``reverted``, so that ``backed_up`` means "the target holds the new bytes".

    Without this, a change the run never reached read as the last write to its target,
    and the next deploy called the untouched file "edited since run N wrote it" (found
    by the reliability sweep).
    """
    for row in changes:
        if row.state != ChangeState.BACKED_UP:
            continue
        try:
            current = fsio.read_state(Path(row.target))
        except OSError:
            continue
        holds_old = current.sha256 == row.old_sha256 and current.mode == row.old_mode \
            if row.old_sha256 is not None else not current.exists
        holds_new = current.sha256 == row.new_sha256 and current.mode == row.new_mode \
            if row.new_sha256 is not None else not current.exists
        if holds_old and not holds_new:
            index.changes.set_state(row.seq, ChangeState.REVERTED)
