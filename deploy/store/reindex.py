"""Rebuilding the index from the tree (``backups.reindex``, issue 13 "Integrity").

After the index was lost or corrupted, every file of the category folders whose name
parses and whose target the config tells (``scan``) is recorded again as a restorable
row of one run of kind ``reindex``, in state ``imported`` like a migration's: listed,
verified, restorable with ``rollback.<category> --to ID``, never picked by the step-back
rollbacks (their runs' targets were never written by it).

The order, under the lock:

1. a corrupt index (and its journal, first: a hot journal beside a new index would be
   rolled into it) is renamed into the state dir beside ``backups/``, as
   ``index.sqlite.corrupt-<YYYYmmdd_HHMMSS>[_NN]``: the tree holds only the index, its
   journal, the lock and the category folders;
2. the index is opened read-write (created empty when it was lost or moved);
3. the run and all of its rows are written in one transaction, the run already ``done``.

A kill before 3 commits leaves no new row; a rerun finds the index absent or empty (or
still corrupt) and starts again. A healthy index that holds runs is refused (exit 2)
unless ``force``: then only the files no row holds are recorded (the orphans of
``backups.verify``), so running it twice records nothing the second time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.errors import ConfigError, WriteFailed
from deploy.provenance import Provenance
from deploy.states import Action, ChangeState, RunKind, RunState
from deploy.store import lock
from deploy.store.index import Index
from deploy.store.index.rows import ZST
from deploy.store.naming import stamp, unique_name
from deploy.store.records import Applied
from deploy.store.recover import recover
from deploy.store.scan import Entry, Targets, Unrecorded, scan
from deploy.store.signals import deferred
from deploy.store.tree import INDEX_NAME, JOURNAL_NAME, Store, describe, now_iso
from deploy.store.verify import BROKEN, HEALTHY, Health, index_health

CORRUPT_MARK = ".corrupt-"


class Reindex(NamedTuple):
    """What a reindex records (or would): the index it found, where a corrupt one goes,
    the entries, and the files it cannot record."""

    health: Health
    aside: Path | None
    entries: tuple[Entry, ...]
    unrecorded: tuple[Unrecorded, ...]


class ReindexResult(NamedTuple):
    run: int | None
    changes: tuple[Applied, ...]
    plan: Reindex
    recovered: tuple[int, ...] = ()


def _refuse(store: Store, health: Health, force: bool) -> None:
    if health.state == HEALTHY and health.runs and not force:
        raise ConfigError(
            f"{store.index_path}: the backup index is healthy ({health.runs} run(s)); "
            "backups.reindex rebuilds a lost or corrupt index: pass --force to record only "
            "the tree's files it does not hold")


def aside_path(store: Store, when: datetime) -> Path:
    """Where a corrupt index goes: beside the tree, never inside it."""
    folder = store.state_dir

    def taken(name: str) -> bool:
        return os.path.lexists(folder / name) or os.path.lexists(folder / (name + "-journal"))

    return folder / unique_name(f"{INDEX_NAME}{CORRUPT_MARK}{stamp(when)}", "", taken)


def plan(store: Store, targets: Targets, *, force: bool = False) -> Reindex:
    """What a reindex would record now, read-only (the dry run); refused like the run."""
    if not store.check_trust():
        return Reindex(index_health(store), None, (), ())
    health = index_health(store)
    _refuse(store, health, force)
    known: set[str] = set()
    if health.state == HEALTHY:
        with store.reading() as index:
            known = index.changes.vouched_backups() if index is not None else set()
    entries, unrecorded = scan(store, targets, known)
    aside = aside_path(store, datetime.now()) if health.state == BROKEN else None
    return Reindex(health, aside, tuple(entries), tuple(unrecorded))


def move_aside(store: Store, dest: Path) -> None:
    """Rename the corrupt index (its journal first) to ``dest`` beside the tree, durably."""
    journal = store.tree / JOURNAL_NAME
    try:
        if os.path.lexists(journal):
            os.rename(journal, dest.with_name(dest.name + "-journal"))
        os.rename(store.index_path, dest)
        fsio.fsync_dir(store.tree)
        fsio.fsync_dir(store.state_dir)
    except OSError as err:
        raise WriteFailed(f"{store.index_path}: cannot move the corrupt index to {dest}: "
                          f"{describe(err)}; nothing was recorded") from err


def _record(store: Store, index: Index, entries: tuple[Entry, ...], *, command: str,
            actor: str, provenance: Provenance | None) -> tuple[int, tuple[Applied, ...]]:
    """The run and every row, in one transaction: all of them or none."""
    started = now_iso()
    with index.transaction():
        run = index.runs.add(RunKind.REINDEX, actor, command, os.getpid(), started,
                             {e.category for e in entries}, project=store.project,
                             provenance=provenance)
        seqs = [index.changes.add(
            run=run, category=e.category, key=e.key, target=str(e.target),
            action=Action.IMPORT,
            backup=str(e.backup.relative_to(store.tree)).removesuffix(ZST if e.compressed
                                                                      else ""),
            old_sha256=e.sha256, old_size=e.size, old_mode=e.mode,
            created=e.created,
            created_ts=e.when.timestamp(), state=ChangeState.IMPORTED) for e in entries]
        # How each is stored: compressed or not, and which files are hard links of one
        # inode (status counts it once).
        first: dict[tuple[int, int], int] = {}
        for e, seq in zip(entries, seqs, strict=True):
            blob = first.setdefault(e.inode, seq) if e.inode is not None else seq
            if e.compressed or blob != seq:
                index.changes.set_stored(seq, compressed=e.compressed,
                                         stored_size=e.stored_size or e.size,
                                         blob=None if blob == seq else blob)
        index.runs.finish(run, RunState.DONE, now_iso())
    return run, tuple(Applied(e.category, e.key, e.target, Action.IMPORT, e.backup, seq)
                      for e, seq in zip(entries, seqs, strict=True))


def rebuild(store: Store, targets: Targets, *, command: str, actor: str, wait: float = 0,
            force: bool = False, clock: Callable[[], datetime] = datetime.now,
            provenance: Provenance | None = None) -> ReindexResult:
    """Rebuild the index from the tree under the lock; see the module's docstring."""
    if not store.check_trust():
        return ReindexResult(None, (), Reindex(index_health(store), None, (), ()))
    _refuse(store, index_health(store), force)  # before the lock: a refusal writes nothing
    store.ensure_tree()
    with lock.hold(store.lock_path, command=command, started=now_iso(), wait=wait), \
            deferred() as signals:
        health = index_health(store)  # again: another run may have come between
        _refuse(store, health, force)
        aside = None
        if health.state == BROKEN:
            signals.check("nothing was changed")
            aside = aside_path(store, clock())
            move_aside(store, aside)
        moved = f"; the corrupt index is at {aside}" if aside else ""
        index = Index(store.index_path)
        try:
            recovered = recover(store, index)
            entries, unrecorded = scan(store, targets, index.changes.vouched_backups())
            found = Reindex(health, aside, tuple(entries), tuple(unrecorded))
            signals.check("nothing was recorded" + moved)
            if not entries:
                return ReindexResult(None, (), found, recovered)
            run, changes = _record(store, index, found.entries, command=command, actor=actor,
                                   provenance=provenance)
        finally:
            index.close()
        signals.check(f"run {run} had finished and stays done")
    return ReindexResult(run, changes, found, recovered)
