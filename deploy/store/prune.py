"""Pruning: a backup leaves the index before its file leaves the tree (never a row whose
file is gone without the index saying so)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from deploy.store.index import ChangeRow
from deploy.store.session import Session
from deploy.store.tree import oserror


def delete_backup(sess: Session, row: ChangeRow) -> None:
    """Remove one backup file and mark it pruned (index first: never a dangling row). A file
    another row still holds (an index from before names were unique) stays."""
    with sess.index.transaction():
        sess.index.changes.mark_pruned(row.seq)
    assert row.backup is not None
    if sess.index.changes.backup_shared(row.backup, row.seq):
        return
    path = sess.store.backup_path(row)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise oserror("removing backup", path, err) from err


def delete_backups(sess: Session, rows: Iterable[ChangeRow]) -> list[ChangeRow]:
    """Remove each backup of ``rows`` in turn; returns them."""
    done: list[ChangeRow] = []
    for row in rows:
        sess.signals.check(f"{len(done)} backup(s) pruned before it; the rest are kept")
        delete_backup(sess, row)
        done.append(row)
    return done
