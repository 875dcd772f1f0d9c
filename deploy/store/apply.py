"""Applying a plan as one run, in the durable order of ``deploy.store``'s docstring.

1. commit the run and its planned changes (``planned``);
2. copy each target's old bytes to its backup, fsync, rename, fsync the folders;
3. commit ``backed_up``;
4. write each target, fsync, rename, fsync the folders;
5. commit ``applied``, the renders, the targets accepted as they are (``accept``), and
   the run's end.

A failure in 2 drops the copies (nothing changed yet); in 4 or 5 the targets
already written get their old bytes back (``undo``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from deploy import fsio
from deploy.errors import WriteFailed
from deploy.plan import Plan
from deploy.states import ChangeState, RunKind, RunState
from deploy.store.accept import accept, record
from deploy.store.index import Index
from deploy.store.naming import Namer
from deploy.store.phases import write_backups, write_targets
from deploy.store.preflight import preflight
from deploy.store.records import Applied, RunResult
from deploy.store.session import Session
from deploy.store.tree import Store, now_iso
from deploy.store.undo import undo_targets

OnDone = Callable[[Index, int, list[int]], None]
log = logging.getLogger("deploy")


def backup_names(store: Store, index: Index, plan: Plan,
                 when: datetime) -> list[Path | None]:
    """Each change's backup path (None for a target that was absent), unique on disk and
    within the run; a backup folder that is a link or not a folder is refused."""
    namer = Namer(store.tree, when, index.changes.backup_known)
    names: list[Path | None] = []
    checked: set[Path] = set()
    for change in plan.changes:
        if not change.old.exists:
            names.append(None)
            continue
        folder = store.folder(change.category, change.key)
        if folder not in checked:
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise WriteFailed(f"{folder}: backup folder is not a real folder; refusing")
            checked.add(folder)
        names.append(namer.name(change.category, change.key, change.target))
    return names


def apply(sess: Session, plan: Plan, *, kind: RunKind, undoes: int | None = None,
          on_done: OnDone | None = None, record_empty: bool = False) -> RunResult:
    """Back up and write every change of ``plan`` as one run; all or nothing.

    A plan with no change records no run, unless ``record_empty`` (a rollback that only
    marks an interrupted run's never-written changes as undone); one that only accepts
    targets as they are records just that (``accept``).
    """
    if not plan.changes and not record_empty:
        return accept(sess, plan, kind=kind)
    store, index = sess.store, sess.index
    sess.signals.check("nothing was changed")
    preflight(store, plan)
    # Debris of earlier runs that could not clean up after themselves goes first.
    for folder in dict.fromkeys(c.target.parent for c in plan.changes):
        fsio.remove_stale_temps(folder)
    backups = backup_names(store, index, plan, sess.clock())
    started = now_iso()
    with index.transaction():
        run = index.runs.add(kind, sess.actor, sess.command, os.getpid(), started,
                             {c.category for c in plan.changes}
                             | {a.category for a in plan.accepts} or plan.categories, undoes,
                             store.project, sess.provenance)
        sess.run = run
        seqs = []
        for change, backup in zip(plan.changes, backups, strict=True):
            seqs.append(index.changes.add(
                run=run, category=change.category, key=change.key,
                target=str(change.target), action=change.action,
                backup=str(backup.relative_to(store.tree)) if backup else None,
                old_sha256=change.old.sha256,
                old_size=change.old.size if change.old.exists else None,
                old_mode=change.old.mode, old_owner=change.old.owner,
                new_sha256=change.new_sha256,
                new_size=change.new_size if change.new is not None else None,
                new_mode=change.mode if change.new is not None else None,
                created=started, created_ts=time.time(), state=ChangeState.PLANNED,
                reverts=change.reverts))
    log.debug("run %d: %d change(s), %d backup(s)", run, len(plan.changes),
              sum(b is not None for b in backups))
    blobs: dict[int, int] = {}
    write_backups(index, run, plan, backups, sess.signals.check,
                  tree=store.tree if sess.dedupe else None, blobs=blobs)
    with index.transaction():
        index.changes.move(run, ChangeState.PLANNED, ChangeState.BACKED_UP)
        for i, blob in blobs.items():  # hard links to an equal backup (``dedupe``)
            index.changes.set_stored(seqs[i], compressed=False,
                                     stored_size=plan.changes[i].old.size, blob=blob)
    write_targets(index, run, plan, backups, sess.before_target, sess.signals.check)
    try:
        sess.signals.check()
        accepted = commit_applied(index, run, plan, seqs, on_done)
    except BaseException as err:
        # The targets are written but the index could not say so: a run is all or
        # nothing, so put the old bytes back (found by the reliability sweep: a failed
        # final commit used to exit 1 with every target changed).
        undo_targets(index, run, plan, backups, list(range(len(plan.changes))), err)
        raise
    sess.finished = run
    log.debug("run %d done: %d change(s)", run, len(plan.changes))
    return RunResult(run, (*(
        Applied(category=c.category, key=c.key, target=c.target, action=c.action, backup=b,
                seq=s)
        for c, b, s in zip(plan.changes, backups, seqs, strict=True)), *accepted),
        sess.recovered)


def commit_applied(index: Index, run: int, plan: Plan, seqs: list[int],
                   on_done: OnDone | None) -> list[Applied]:
    """Step 5: the changes are applied, their renders recorded, the targets the plan
    accepts recorded as they are, the run done; one commit."""
    with index.transaction():
        index.changes.move(run, ChangeState.BACKED_UP, ChangeState.APPLIED)
        for change, seq in zip(plan.changes, seqs, strict=True):
            if change.render is not None and change.new_sha256 is not None:
                # The render's own hash: after a merge the target holds more than the
                # render, and the stored output (the next merge base) must verify.
                index.renders.add(seq, change.category, change.key,
                                  change.render.template_sha256,
                                  fsio.sha256_bytes(change.render.output),
                                  change.render.output, change.render.context_sha256)
                if change.render.code is not None:
                    index.renders.put_code(*change.render.code)
        accepted = record(index, run, plan.accepts, now_iso())
        if on_done is not None:
            on_done(index, run, seqs)
        index.runs.finish(run, RunState.DONE, now_iso())
    return accepted
