"""The batched write phases of a run: backups, then targets ("group commit").

Each phase writes a batch of temp files, fsyncs the batch, renames it into place and
fsyncs each folder once at the end, so one journal commit covers a batch instead of
one per file, in the same durable order the store's docstring gives.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.errors import DeployError, IntegrityError, Interrupted, WriteFailed
from deploy.plan import Change, Plan, tick
from deploy.store import dedupe
from deploy.store.index import Index
from deploy.store.tree import oserror, sync_folders
from deploy.store.trust import PRIVATE_DIR, PRIVATE_FILE
from deploy.store.undo import abandon, undo_targets

# The guide's troubleshooting log (every backup attempt, folder, copy and error): the task
# layer shows it on stderr with --verbose or DEPLOY_LOG=debug; the package never prints.
log = logging.getLogger("deploy")
# Files written before one batched fsync; bounded so a huge run never holds too many fds.
BATCH = 256


class Item(NamedTuple):
    """One file of a batch: the change's index, where it goes and what it holds."""

    i: int
    dest: Path
    data: bytes | Path | fsio.Stream
    mode: int
    what: str                             # for errors: "writing", "backing up X to"
    expect: str | None                    # the sha256 the bytes must have
    owner: fsio.Owner | None
    changed: Callable[[str], DeployError]  # the error when they do not


def stage_batch(items: list[Item],
                staged: dict[int, fsio.Staged], *, cold: bool = False) -> None:
    """Write a batch of temp files, then fsync them all (group commit).

    Each staged file lands in ``staged`` so that the caller can discard them all on
    failure. Bytes that do not hash as planned never get their mode or owner.
    """
    for item in items:
        try:
            staged[item.i] = fsio.stage(item.dest, item.data, item.mode, cold=cold,
                                        expect=item.expect, owner=item.owner)
        except fsio.Mismatch as err:
            raise item.changed(err.sha256) from err
        except OSError as err:
            raise oserror(item.what, item.dest, err) from err
    for item in items:
        try:
            fsio.sync(staged[item.i])
        except OSError as err:
            raise oserror("syncing", item.dest, err) from err


def write_backups(index: Index, run: int, plan: Plan, backups: list[Path | None],
                  check: Callable[[], None] = lambda: None, *, tree: Path | None = None,
                  blobs: dict[int, int] | None = None) -> None:
    """Copy every old target to its backup: write a batch, fsync the batch, rename it,
    and fsync each backup folder once at the end. With ``tree``, a backup whose bytes a
    verified backup of the tree holds already is a hard link to it (``dedupe``); ``blobs``
    gets each linked change's index and the row whose write made the shared file."""
    written: list[Path] = []
    staged: dict[int, fsio.Staged] = {}
    folders: dict[Path, None] = {}
    todo = [i for i, b in enumerate(backups) if b is not None]
    try:
        for start in range(0, len(todo), BATCH):
            check()
            items: list[Item] = []
            for i in todo[start:start + BATCH]:
                change, backup = plan.changes[i], backups[i]
                assert backup is not None and change.old.mode is not None
                if backup.parent not in folders:
                    log.debug("backup folder %s", backup.parent)
                    try:
                        fsio.makedirs_durably(backup.parent, PRIVATE_DIR)
                    except OSError as err:
                        raise oserror("creating backup folder", backup.parent, err) from err
                    folders[backup.parent] = None
                found = dedupe.source(tree, index, change.old.sha256, change.old.size) \
                    if tree is not None else None
                if found is not None and dedupe.link(change.target, change.old.sha256, found,
                                                     backup):
                    written.append(backup)
                    if blobs is not None:
                        blobs[i] = found.blob
                    continue
                # Backups are data: 0600, no exec or set-id bits; the index keeps the
                # target's mode and a restore gives it back.
                log.debug("backing up %s to %s", change.target, backup)
                tick("backing up", len(written) + len(items) + 1, len(todo),
                              f"{change.category}/{change.key}")
                items.append(Item(i, backup, change.target, PRIVATE_FILE,
                                  f"backing up {change.target} to", change.old.sha256, None,
                                  partial(_changed_while_backed_up, change.target)))
            stage_batch(items, staged, cold=True)
            for item in items:
                i, backup, done = item.i, item.dest, staged.pop(item.i)
                try:
                    fsio.commit_temp(done.tmp, backup)
                except OSError as err:
                    raise oserror("renaming backup", backup, err) from err
                written.append(backup)
        sync_folders(folders, "backup folder")
    except BaseException as err:
        # Nothing was changed yet: drop this run's backups and record it as failed.
        for left in staged.values():
            fsio.discard(left)
        abandon(index, run, written, interrupted=isinstance(err, Interrupted))
        if isinstance(err, Interrupted):
            raise err.amend("nothing was changed") from err
        raise


def write_targets(index: Index, run: int, plan: Plan, backups: list[Path | None],
                  before_target: Callable[[int, Change], None] | None = None,
                  check: Callable[[], None] = lambda: None) -> None:
    """Write every target: a batch of temp files, fsync the batch, rename it into place
    (link for targets that were absent, so nothing that appeared meanwhile is
    replaced), and fsync each target folder once at the end."""
    done: list[int] = []
    staged: dict[int, fsio.Staged] = {}
    folders: dict[Path, None] = {}
    try:
        for start in range(0, len(plan.changes), BATCH):
            batch = range(start, min(start + BATCH, len(plan.changes)))
            items: list[Item] = []
            for i in batch:
                change = plan.changes[i]
                if before_target is not None:
                    before_target(i, change)
                if change.new is None:
                    continue
                if change.target.parent not in folders:
                    try:
                        fsio.makedirs_durably(change.target.parent)
                    except OSError as err:
                        raise oserror("creating folder", change.target.parent, err) from err
                    folders[change.target.parent] = None
                tick("writing", i + 1, len(plan.changes),
                              f"{change.category}/{change.key}")
                log.debug("writing %s (%s, mode %04o)", change.target,
                          change.new if isinstance(change.new, Path | fsio.Stream)
                          else "rendered",
                          change.mode)
                items.append(Item(i, change.target, change.new, change.mode, "writing",
                                  change.new_sha256, change.new_owner,
                                  partial(_not_as_planned, change)))
            stage_batch(items, staged)
            for i in batch:
                check()  # between two targets: each is old or new, and `done` says which
                put_in_place(plan.changes[i], staged.pop(i, None))
                done.append(i)
                folders[plan.changes[i].target.parent] = None
        sync_folders(folders, "folder")
    except BaseException as err:
        for left in staged.values():
            fsio.discard(left)
        undo_targets(index, run, plan, backups, done, err)
        raise


def _changed_while_backed_up(target: Path, _sha256: str) -> DeployError:
    return WriteFailed(f"{target}: changed while being backed up; try again")


def _not_as_planned(change: Change, sha256: str) -> DeployError:
    source = change.new if isinstance(change.new, Path | fsio.Stream) else "new content"
    return IntegrityError(f"{source}: sha256 {sha256} != {change.new_sha256} expected; "
                          f"{change.target} left as it was")


def put_in_place(change: Change, staged: fsio.Staged | None) -> None:
    target = change.target
    if staged is None:
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise oserror("removing", target, err) from err
        return
    try:
        try:
            if change.old.exists:
                fsio.commit_temp(staged.tmp, target)
            else:
                fsio.create_from_temp(staged.tmp, target)
        except BaseException:
            fsio.discard(staged)  # never leave a temp name beside the target
            raise
    except FileExistsError as err:
        raise WriteFailed(f"{target}: appeared while deploying; it was left as it is; "
                          "run again to back it up first") from err
    except OSError as err:
        raise oserror("renaming into place", target, err) from err

