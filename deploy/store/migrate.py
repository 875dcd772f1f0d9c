"""Migration: legacy backups copied into the tree as one run of their own.

The same durable order as a deploy: rows first (``planned``), then the copies,
then the commit that marks them ``imported``; a kill in between is cleaned by
recovery. Files already imported (same target and bytes) are skipped, so it can
run again.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from deploy import fsio
from deploy.errors import WriteFailed
from deploy.states import Action, ChangeState, RunKind, RunState
from deploy.store.naming import Namer
from deploy.store.records import Applied, RunResult
from deploy.store.session import Session
from deploy.store.tree import now_iso, oserror, sync_folders
from deploy.store.undo import abandon

# What to import: (category, key, legacy file, the target it backed up, its time).
Item = tuple[str, str, Path, Path, datetime]


def import_files(sess: Session, items: list[Item], *, kind: RunKind = RunKind.MIGRATE,
                 action: Action = Action.IMPORT) -> RunResult:
    """Copy files into the tree as one run of ``kind`` (legacy backups; ``backups.create``
    copies targets as they are); returns what was copied."""
    store, index = sess.store, sess.index
    todo = []
    namer = Namer(store.tree, datetime.now(), index.changes.backup_known)
    for category, key, path, target, when in items:
        state = fsio.read_state(path)
        if not state.exists or state.sha256 is None:
            continue
        if index.changes.imported(str(target), state.sha256):
            continue
        dest = namer.name(category, key, target, when)  # named for the legacy file's time
        todo.append((category, key, path, target, state, dest))
    if not todo:
        return RunResult(None, (), sess.recovered)
    started = now_iso()
    with index.transaction():
        run = index.runs.add(kind, sess.actor, sess.command, os.getpid(), started,
                             {t[0] for t in todo}, project=store.project)
        seqs = [index.changes.add(
            run=run, category=category, key=key, target=str(target), action=action,
            backup=str(dest.relative_to(store.tree)), old_sha256=state.sha256,
            old_size=state.size, old_mode=state.mode, created=started,
            created_ts=time.time(), state=ChangeState.PLANNED)
            for category, key, _path, target, state, dest in todo]
    folders: set[Path] = set()
    try:
        for _category, _key, path, _target, state, dest in todo:
            try:
                fsio.makedirs_durably(dest.parent)
                tmp, sha, _ = fsio.write_temp(dest, path, state.mode or 0o644)
                if sha != state.sha256:
                    os.unlink(tmp)
                    raise WriteFailed(f"{path}: changed while being copied; try again")
                fsio.commit_temp(tmp, dest)
            except OSError as err:
                raise oserror(f"copying {path} to", dest, err) from err
            folders.add(dest.parent)
        sync_folders(folders, "backup folder")
    except BaseException:
        abandon(index, run, [t[5] for t in todo])
        raise
    with index.transaction():
        index.changes.move(run, ChangeState.PLANNED, ChangeState.IMPORTED)
        index.runs.finish(run, RunState.DONE, now_iso())
    return RunResult(run, tuple(
        Applied(category=t[0], key=t[1], target=t[3], action=action, backup=t[5], seq=seq)
        for t, seq in zip(todo, seqs, strict=True)), sess.recovered)
