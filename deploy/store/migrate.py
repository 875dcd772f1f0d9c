"""Migration: legacy backups copied into the tree as one run of their own, each copy
re-hashed against its original, and (only when asked) the originals removed.

The order, each step durable before the next:

1. commit the run and its ``planned`` changes;
2. copy each legacy file into the tree (temp file, fsync, rename; 0600 in 0700 folders,
   like every backup) and fsync the folders;
3. commit ``imported`` and the run's end;
4. re-hash every copy in the tree and compare it with its original, read again;
5. only then, and only when asked, remove the originals whose copy verified (each
   folder fsynced once after its removals).

A kill in 1-2 leaves ``planned`` rows: the next session's recovery removes their copies
and records the run ``interrupted``, and the rerun imports those files again. A kill in
4-5 leaves the run ``done``: the rerun imports nothing (bytes already imported for a
target are skipped) and verifies and removes what is left. So every file is imported
once, and no original goes before a committed copy re-hashed equal to it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.errors import DeployError, Interrupted, WriteFailed
from deploy.plan import tick
from deploy.states import Action, ChangeState, RunKind, RunState
from deploy.store import dedupe, phases
from deploy.store.index import ChangeRow, Index
from deploy.store.naming import Namer
from deploy.store.records import Applied, RunResult
from deploy.store.session import Session
from deploy.store.tree import Store, now_iso, oserror, sync_folders
from deploy.store.trust import PRIVATE_DIR, PRIVATE_FILE
from deploy.store.undo import abandon


class Item(NamedTuple):
    """A legacy backup to import: its category and key, the file, the target it backed up,
    and the time its name carries (the copy is named for it)."""

    category: str
    key: str
    path: Path
    target: Path
    when: datetime


class Migration(NamedTuple):
    """What one ``backups.migrate`` did."""

    result: RunResult                 # the import run (None: nothing new to import)
    sources: tuple[Path, ...]         # the legacy file of each of its changes, in order
    verified: tuple[Item, ...]        # originals whose copy in the tree re-hashed equal
    problems: tuple[str, ...]         # copies that did not verify: their originals stay
    kept: tuple[str, ...]             # originals kept for another reason (copy pruned)
    removed: tuple[Path, ...]         # originals removed (with ``remove_originals``)
    not_removed: tuple[str, ...]      # removals that failed: warnings, not failures


def owned_by(store: Store, index: Index | None) -> Callable[[Path], bool]:
    """Whether a file is the toolkit's own: a target or a backup some change row names."""
    tree = store.tree.resolve()

    def owned(path: Path) -> bool:
        if index is None:
            return False
        resolved = path.resolve()
        if index.changes.names_target(str(path)) or index.changes.names_target(str(resolved)):
            return True
        try:
            return index.changes.backup_known(str(resolved.relative_to(tree)))
        except ValueError:
            return False

    return owned


def pending(index: Index | None, items: Iterable[Item]) -> list[Item]:
    """The items whose bytes are not imported for their target yet (read-only)."""
    todo = []
    for item in items:
        state = fsio.read_state(item.path)
        if state.sha256 is not None and (
                index is None or not index.changes.imported(str(item.target), state.sha256)):
            todo.append(item)
    return todo


def import_files(sess: Session, items: Iterable[Item], *, kind: RunKind = RunKind.MIGRATE,
                 action: Action = Action.IMPORT) -> RunResult:
    """Copy files into the tree as one run of ``kind`` (legacy backups; ``backups.create``
    copies targets as they are, with ``kind`` and ``action`` backup); returns what was
    copied. Bytes already imported for a target (by an earlier run, or twice in this one)
    are skipped."""
    return _import(sess, items, kind, action)[0]


def _import(sess: Session, items: Iterable[Item], kind: RunKind = RunKind.MIGRATE,
            action: Action = Action.IMPORT) -> tuple[RunResult, tuple[Path, ...]]:
    store, index = sess.store, sess.index
    todo = []
    seen: set[tuple[str, str]] = set()
    namer = Namer(store.tree, datetime.now(), index.changes.backup_known)
    for item in items:
        state = fsio.read_state(item.path)
        if state.sha256 is None:
            continue
        twin = (str(item.target), state.sha256)
        if twin in seen or index.changes.imported(*twin):
            continue
        seen.add(twin)
        # Named for the legacy file's time, so the copy says when the original took it.
        dest = namer.name(item.category, item.key, item.target, item.when)
        todo.append((item, state, dest))
    if not todo:
        return RunResult(None, (), sess.recovered), ()
    sess.signals.check("nothing was imported")
    started = now_iso()
    with index.transaction():
        run = index.runs.add(kind, sess.actor, sess.command, os.getpid(), started,
                             {item.category for item, _, _ in todo}, project=store.project,
                             provenance=sess.provenance)
        sess.run = run
        seqs = [index.changes.add(
            run=run, category=item.category, key=item.key, target=str(item.target),
            action=action, backup=str(dest.relative_to(store.tree)),
            old_sha256=state.sha256, old_size=state.size, old_mode=state.mode,
            created=started, created_ts=time.time(), state=ChangeState.PLANNED)
            for item, state, dest in todo]
    blobs = _copy(sess, run, [(item.path, state.sha256, state.size, dest)
                              for item, state, dest in todo])
    with index.transaction():
        index.changes.move(run, ChangeState.PLANNED, ChangeState.IMPORTED)
        for i, blob in blobs.items():  # hard links to an equal backup (``dedupe``)
            index.changes.set_stored(seqs[i], compressed=False, stored_size=todo[i][1].size,
                                     blob=blob)
        index.runs.finish(run, RunState.DONE, now_iso())
    sess.finished = run
    return RunResult(run, tuple(
        Applied(category=item.category, key=item.key, target=item.target, action=action,
                backup=dest, seq=seq)
        for (item, _, dest), seq in zip(todo, seqs, strict=True)), sess.recovered), \
        tuple(item.path for item, _, _ in todo)


def _changed(path: Path, sha256: str) -> DeployError:
    return WriteFailed(f"{path}: changed while being copied (sha256 {sha256}); try again")


def _copy(sess: Session, run: int, copies: list[tuple[Path, str | None, int, Path]]
          ) -> dict[int, int]:
    """Copy each file (path, sha256, size, name in the tree) to its name in the tree, in
    the deploy's group commit (``phases.stage_batch``): a batch of temp files, one fsync
    pass, the renames, each folder fsynced once at the end; or, when a verified backup of
    the tree holds the same bytes, link it there (``dedupe``, as a deploy's backups are):
    returns each linked copy's index and the row whose write made the file it shares. On
    any failure the run's copies go and the run is recorded failed (or interrupted)."""
    blobs: dict[int, int] = {}
    written: list[Path] = []
    staged: dict[int, fsio.Staged] = {}
    folders: dict[Path, None] = {}
    try:
        for start in range(0, len(copies), phases.BATCH):
            sess.signals.check()
            batch = []
            for i in range(start, min(start + phases.BATCH, len(copies))):
                path, sha256, size, dest = copies[i]
                tick("copying", i + 1, len(copies), dest.name)
                if dest.parent not in folders:
                    try:
                        fsio.makedirs_durably(dest.parent, PRIVATE_DIR)
                    except OSError as err:
                        raise oserror("creating backup folder", dest.parent, err) from err
                    folders[dest.parent] = None
                found = dedupe.source(sess.store.tree, sess.index, sha256, size) \
                    if sess.dedupe else None
                if found is not None and dedupe.link(path, sha256, found, dest):
                    written.append(dest)
                    blobs[i] = found.blob
                    continue
                batch.append(phases.Item(i, dest, path, PRIVATE_FILE, f"copying {path} to",
                                         sha256, None, partial(_changed, path)))
            phases.stage_batch(batch, staged, cold=True)
            for item in batch:
                done = staged.pop(item.i)
                try:
                    fsio.commit_temp(done.tmp, item.dest)
                except OSError as err:
                    raise oserror("renaming the copy", item.dest, err) from err
                written.append(item.dest)
        sync_folders(folders, "backup folder")
        sess.signals.check()
    except BaseException as err:
        for left in staged.values():
            fsio.discard(left)
        abandon(sess.index, run, written, interrupted=isinstance(err, Interrupted))
        if isinstance(err, DeployError):
            raise err.amend("nothing was imported; every original is where it was") from err
        raise
    return blobs


def _verify(sess: Session, items: Iterable[Item]
            ) -> tuple[list[Item], list[str], list[str]]:
    """Re-hash each item's copy in the tree against the original as it is now: (verified,
    problems, kept). An original that is gone already has nothing left to verify."""
    verified, problems, kept = [], [], []
    for item in items:
        try:
            state = fsio.read_state(item.path)
        except OSError as err:
            problems.append(f"{item.path}: cannot read: {err.strerror or err}")
            continue
        if state.sha256 is None:
            continue
        row: ChangeRow | None = sess.index.changes.imported_copy(str(item.target), state.sha256)
        if row is None:
            if sess.index.changes.imported(str(item.target), state.sha256):
                kept.append(f"{item.path}: its copy in the tree was pruned; the original stays")
            else:
                problems.append(f"{item.path}: no copy in the tree holds its bytes")
            continue
        try:
            sess.store.check_backup(row, sess.index)
        except DeployError as err:
            problems.append(f"{err}; the original {item.path} stays")
            continue
        verified.append(item)
    return verified, problems, kept


def migrate_files(sess: Session, items: list[Item], *, remove_originals: bool = False) -> Migration:
    """Import ``items``, verify every copy, then (when asked) remove the verified originals.

    A failure to remove one is reported in ``not_removed``, never raised: the run is done
    and every copy holds its original's bytes.
    """
    result, sources = _import(sess, items)
    verified, problems, kept = _verify(sess, items)
    removed: list[Path] = []
    not_removed: list[str] = []
    if remove_originals:
        folders: dict[Path, None] = {}
        for item in verified:
            sess.signals.check(f"{len(removed)} original(s) removed before it; the rest stay "
                               "(every one of them has a verified copy in the tree)")
            try:
                os.unlink(item.path)
            except FileNotFoundError:
                continue
            except OSError as err:
                not_removed.append(f"{item.path}: could not remove the original: "
                                   f"{err.strerror or err}")
                continue
            removed.append(item.path)
            folders[item.path.parent] = None
        for folder in folders:
            # Each folder once: an original that comes back after a crash is imported
            # already, and the next run removes it again.
            try:
                fsio.fsync_dir(folder)
            except OSError as err:
                not_removed.append(f"{folder}: could not sync the removals: "
                                   f"{err.strerror or err}")
    return Migration(result, sources, tuple(verified), tuple(problems), tuple(kept), tuple(removed),
                     tuple(not_removed))
