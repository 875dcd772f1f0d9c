"""Pruning: backups leave the index before their files leave the tree, in two commits.

The order, per batch of rows (``CHUNK``), so that a kill anywhere leaves the index true:

1. commit the rows as *pending* (``pruned = 2``): from here the index no longer vouches
   for them (``backups.list``, rollbacks and verify pass over them), and never vouches for
   a file that is gone;
2. unlink each file no other live row holds, then fsync each folder once;
3. commit the rows as *pruned* (``pruned = 1``): a pruned row's file is durably gone.

A kill between 1 and 3 leaves pending rows; the next session (``recover``) finishes them
(step 2 and 3 again; an unlink of a file already gone is no error) before anything else,
so ``backups.verify`` right after a killed prune finds no orphan and no missing file.
Every backup retention kept is untouched throughout: only the rows given are marked.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from deploy.errors import DeployError
from deploy.store.index import ChangeRow, Index
from deploy.store.signals import Deferral
from deploy.store.tree import Store, oserror, sync_folders

CHUNK = 1000  # rows per pair of commits: progress is durable, and a signal is seen, per chunk
PENDING, PRUNED = 2, 1


class Session(Protocol):
    """What pruning needs of a ``deploy.store.session.Session`` (which opens with
    :func:`finish_pending`, so this module cannot import it)."""

    store: Store
    index: Index
    signals: Deferral


def _remove_files(store: Store, index: Index, rows: list[ChangeRow],
                  holders: Counter[str]) -> None:
    """Unlink the files of ``rows`` (already pending) that no other live row holds, fsync
    their folders, then commit the rows pruned.

    An unlink that fails (a file that cannot be removed) gives the rows not reached yet,
    that one included, back to the index (``pruned = 0``: their files are all still
    there), then raises: a failed prune removes what it could and vouches for the rest. A
    failed folder fsync leaves the rows pending (their files may be gone, or go): the
    next session finishes them.
    """
    folders: set[Path] = set()
    reached = 0
    try:
        for row in rows:
            assert row.backup is not None
            # A file another row still vouches for (an index from before names were
            # unique) stays.
            if holders[row.backup] <= 0:
                path = store.backup_path(row)
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                folders.add(path.parent)
            reached += 1
    except OSError as err:
        left = rows[reached:]
        try:
            with index.transaction():
                index.changes.mark_pruned([r.seq for r in left], 0)
        except DeployError:
            pass  # they stay pending: the next session tries again
        path = store.backup_path(left[0])
        raise oserror("removing backup", path, err) from err
    sync_folders(sorted(folders), "the backup folder after pruning")
    with index.transaction():
        index.changes.mark_pruned([r.seq for r in rows], PRUNED)


def delete_backups(sess: Session, rows: Iterable[ChangeRow]) -> list[ChangeRow]:
    """Remove the backups of ``rows`` (index first, then files, then the index again), a
    chunk at a time; returns the rows removed. A signal stops it between chunks, with
    every chunk before it done."""
    todo = [r for r in rows if r.backup is not None]
    holders = sess.index.changes.backup_holders()
    done: list[ChangeRow] = []
    for start in range(0, len(todo), CHUNK):
        sess.signals.check(f"{len(done)} backup(s) pruned before it; the rest are kept")
        chunk = todo[start:start + CHUNK]
        with sess.index.transaction():
            sess.index.changes.mark_pruned([r.seq for r in chunk], PENDING)
        for row in chunk:
            assert row.backup is not None
            holders[row.backup] -= 1
        _remove_files(sess.store, sess.index, chunk, holders)
        done += chunk
    return done


def delete_backup(sess: Session, row: ChangeRow) -> None:
    """Remove one backup file and mark it pruned (see :func:`delete_backups`)."""
    delete_backups(sess, [row])


def finish_pending(store: Store, index: Index) -> int:
    """Finish a prune a kill cut short: remove the files of pending rows, mark them
    pruned; returns how many rows it finished. A file that still cannot be removed goes
    back to the index (see :func:`_remove_files`) and does not stop the session: the
    prune that wanted it gone will judge it again."""
    rows = index.changes.pending_prune(PENDING)
    if not rows:
        return 0
    try:
        _remove_files(store, index, rows, index.changes.backup_holders())
    except DeployError:
        return 0
    return len(rows)
