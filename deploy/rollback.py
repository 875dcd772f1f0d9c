"""Rollback planning, shared by every category.

A rollback steps back through the runs that changed things, newest first,
skipping rollbacks and runs already undone. Before anything is restored every
backup it needs is re-hashed (a mismatch or a missing file stops it, exit 1),
and every target must still hold what the run wrote (drift stops it, exit 3,
unless forced). The rollback is itself a run with its own backups, so it can be
undone with ``rollback.release --run``.

A change that only accepted a target as it was (action ``adopt``: ``templates.adopt``,
a kept conflict) wrote nothing, so undoing it writes nothing: the acceptance is
withdrawn (the index passes over undone changes), and the bytes are a conflict again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.errors import Blocked, ConfigError
from deploy.plan import Change, Plan, Skip
from deploy.states import HOLDS_BACKUP, LIVE, Action, RunState
from deploy.store import ChangeRow, Index, Store


class RollbackPlan(NamedTuple):
    plan: Plan
    run: int | None          # the run being undone (None for --to or nothing to do)
    undo: tuple[int, ...]    # change seqs this rollback marks undone
    redo: tuple[int, ...]    # change seqs a rolled-back rollback brings back


def _current(target: Path) -> fsio.FileState:
    try:
        return fsio.read_state(target)
    except OSError as err:
        raise ConfigError(f"{target}: not a regular file; refusing to restore over it") from err


def _restore_change(store: Store, index: Index, row: ChangeRow, current: fsio.FileState, *,
                    integrity: bool) -> Change | None:
    target = Path(row.target)
    if row.backup is None:
        if not current.exists:
            return None
        return Change(category=row.category, key=row.key, target=target, old=current,
                      new=None, new_sha256=None, new_size=0, mode=current.mode or 0o644,
                      reverts=row.seq)
    backup = store.restore_source(row, index, integrity=integrity)
    if current.exists and current.sha256 == row.old_sha256 and current.mode == row.old_mode:
        return None
    assert row.old_mode is not None and row.old_size is not None
    return Change(category=row.category, key=row.key, target=target, old=current, new=backup,
                  new_sha256=row.old_sha256, new_size=row.old_size, mode=row.old_mode,
                  reverts=row.seq, owner=row.old_owner)


def _holds(current: fsio.FileState, sha: str | None) -> bool:
    return current.sha256 == sha if sha is not None else not current.exists


COMMIT_PREFIX = re.compile(r"[0-9a-f]{4,64}")


def check_commit(prefix: str) -> str:
    """``--commit``'s value: 4 to 64 hex digits (a prefix of a commit id), lower-cased."""
    text = prefix.strip().lower()
    if not COMMIT_PREFIX.fullmatch(text):
        raise ConfigError(f"--commit {prefix!r}: give a commit id or a prefix of one, 4 to 64 "
                          "hex digits")
    return text


def commit_of(store: Store, index: Index, prefix: str) -> str:
    """The one commit of this project's runs that ``prefix`` names; exit 2 when none or
    several do (naming each)."""
    found = index.runs.commits(check_commit(prefix), project=store.project)
    if not found:
        raise ConfigError(f"--commit {prefix}: no run was made from a commit starting so; "
                          "see `invoke history`")
    if len(found) > 1:
        shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10
                                         else "")
        raise ConfigError(f"--commit {prefix} is ambiguous: runs were made from {len(found)} "
                          f"commits starting so ({shown}); give more of it")
    return found[0]


def plan_run(store: Store, index: Index, categories: Iterable[str], *, keys: Iterable[str] = (),
             run: int | None = None, force: bool = False, integrity: bool = True,
             commit: str | None = None) -> RollbackPlan:
    """Plan undoing one run's changes in ``categories`` (narrowed to ``keys`` when given);
    with ``commit``, the latest not-undone run made from that commit."""
    cats = tuple(categories)
    key_list = list(keys)
    if run is None:
        found = index.runs.undoable(cats, keys=key_list or None, project=store.project,
                                    commit=commit_of(store, index, commit) if commit else None)
        if not found:
            return RollbackPlan(Plan(categories=cats), None, (), ())
        run = found[0]
    run_row = index.runs.get(run)
    if run_row is None:
        raise ConfigError(f"no run {run} in the index; see `invoke history`")
    if run_row.state in (RunState.FAILED, RunState.RUNNING):
        raise ConfigError(f"run {run} is {run_row.state}; it left nothing to roll back")
    rows = [r for r in index.changes.of_run(run)
            if r.state in LIVE and r.undone_by is None
            and r.category in cats and (not key_list or r.key in key_list)]
    if not rows:
        raise ConfigError(f"run {run} has no change left to undo in {', '.join(cats)}")
    changes, skips, undo, redo = [], [], [], []
    problems: list[tuple[str, str]] = []
    for row in reversed(rows):
        target = Path(row.target)
        undo.append(row.seq)
        if row.action == Action.ADOPT:
            skips.append(Skip(row.category, row.key, target, "no longer accepted"))
            continue
        current = _current(target)
        if row.reverts is not None:
            redo.append(row.reverts)
        # The mode counts too: a mode-only change has old sha256 == new sha256 (found by the
        # strace sweep: a killed run's chmod was taken for "never written" and kept).
        if run_row.state == RunState.INTERRUPTED and _holds(current, row.old_sha256) \
                and (row.old_sha256 is not None or not current.exists) \
                and (not current.exists or current.mode == row.old_mode):
            skips.append(Skip(row.category, row.key, target, "never written"))
            continue
        if _holds(current, row.old_sha256) and (not current.exists
                                                or current.mode == row.old_mode):
            # Already what the rollback would restore (an earlier rollback of this run was
            # cut short after writing it): nothing to do, and not drift.
            skips.append(Skip(row.category, row.key, target, "already restored"))
            continue
        if not _holds(current, row.new_sha256) and not force:
            problems.append((str(target), f"{target}: changed since run {run} wrote it"))
            continue
        change = _restore_change(store, index, row, current, integrity=integrity)
        if change is None:
            skips.append(Skip(row.category, row.key, target, "unchanged"))
        else:
            changes.append(change)
    if problems:
        raise Blocked("; ".join(p for _, p in problems) + "; pass --force to restore anyway "
                      "(the current bytes are backed up first)").listing(problems)
    return RollbackPlan(Plan(tuple(changes), tuple(skips), cats), run, tuple(undo), tuple(redo))


def plan_backup(store: Store, index: Index, categories: Iterable[str], backup_id: int, *,
                keys: Iterable[str] = (), force: bool = False,
                integrity: bool = True) -> RollbackPlan:
    """Plan restoring one named backup (``--to BACKUP_ID``) into its own target."""
    cats = tuple(categories)
    row = index.changes.get(backup_id)
    if row is None or row.backup is None or row.state not in HOLDS_BACKUP:
        raise ConfigError(f"no backup {backup_id} in the index; see `invoke backups.list`")
    if row.category not in cats:
        raise ConfigError(f"backup {backup_id} belongs to {row.category}, not {', '.join(cats)}")
    key_list = list(keys)
    if key_list and row.key not in key_list:
        raise ConfigError(f"backup {backup_id} is for {row.key!r}, not {', '.join(key_list)}")
    target = Path(row.target)
    current = _current(target)
    last = index.changes.last_write(row.target)
    if last is not None and not _holds(current, last.new_sha256) and not force:
        raise Blocked(f"{target}: changed since run {last.run} wrote it; pass --force to "
                      "restore anyway (the current bytes are backed up first)").listing(
                          [(str(target), f"{target}: changed since run {last.run} wrote it")])
    change = _restore_change(store, index, row, current, integrity=integrity)
    if change is None:
        return RollbackPlan(Plan((), (Skip(row.category, row.key, target, "unchanged"),), cats),
                            None, (), ())
    return RollbackPlan(Plan((change,), (), cats), None, (), ())


def finish(index: Index, rollback_run: int, plan: RollbackPlan) -> None:
    """Inside the run's final commit: mark what was undone and bring back what was redone."""
    if plan.run is None:
        return
    index.changes.mark_undone(plan.undo, rollback_run)
    index.changes.mark_undone(plan.redo, None)
    affected = {plan.run}
    for seq in plan.redo:
        row = index.changes.get(seq)
        if row is not None:
            affected.add(row.run)
    for run in affected:
        index.runs.refresh_state(run)

