"""Retention: which backups ``backups.prune`` keeps and removes, each with its reason.

One pure function, :func:`verdicts`, decides; the task layer prints what it decided and
the store (``deploy.store.prune``) removes what it was told to. Age and order come from
the index (creation time and sequence number), never from file mtimes: the original
copied mtimes from the source with ``copy2`` and so deleted the newest backup.

The rules, first match wins (``rule`` is the stable code, ``reason`` the text):

``newest``     keep: the newest backup of its target (always; the contract's promise).
``kept-run``   keep: part of a run marked kept with ``history.keep --run N``.
``running``    keep: part of a run still running (only a read-only ``--dry-run`` sees one).
``latest``     keep: part of the latest not-undone run of some category (per project), the
               run ``rollback.<category>`` would undo; all of its backups stay, in every
               category, so that ``rollback.release --run N`` of it works too.
``step-back``  keep: needed by a deeper step-back rollback that is still promised. The
               promise is the category's ``max_backups_per_type`` steps: the newest that
               many undoable runs of the category (per project), stopping at the first run
               whose backups in the category are older than its ``retention_days`` or are
               already gone (step-back cannot get past a run it cannot undo).
``within``     keep: fewer than ``max`` counted backups of its target are newer, and it is
               not older than ``retention_days``.
``too-old``    remove: older than ``retention_days`` for its category.
``too-many``   remove: ``max`` or more counted backups of its target are newer.

Backups of failed and interrupted runs do not use up the count (Capistrano's
``keep_releases`` let failed deploys push good releases out): the rank of a backup counts
only the newer backups of runs that did not fail or get cut short.

``max`` and ``retention_days`` are the category's own (``[tool.deploy.backup.<category>]``)
when set, else the top-level keys; the framework's ``max`` defaults to ``framework_keep``.

Building on it: another action (``compress``) is a change of a ``keep`` verdict's
``action`` (and ``reason``) after this function, keeping its ``rule`` (``newest`` stays
plain) and using its ``created_ts``; a ``remove`` must never be turned into anything else
than ``remove`` or ``keep``. ``deploy.store.prune`` removes the rows of ``remove`` verdicts
only, given as rows: :func:`prune` shows the way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from deploy import categories, store
from deploy.config import BackupSettings
from deploy.states import HOLDS_BACKUP, LIVE, UNDOABLE_RUNS, Action, RunKind, RunState
from deploy.store import Session
from deploy.store.index import ChangeRow, Index, RunRow

DAY = 86400.0
KEEP, REMOVE, COMPRESS = "keep", "remove", "compress"
# The rules that keep a backup some promise needs (not only the count): what the framework's
# rotation must not remove either.
PROMISES = ("kept-run", "running", "latest", "step-back")
# Runs whose backups do not use up a target's count.
UNCOUNTED = (RunState.FAILED, RunState.INTERRUPTED, RunState.RUNNING)


class Verdict(NamedTuple):
    """What prune does with one backup (a change row holding a backup file), and why."""

    id: int              # the change row's seq: the backup id of backups.list and --to
    filename: str        # the backup file's name
    action: str          # keep | remove (| compress, added on top of this module)
    reason: str          # one line for people
    rule: str            # the rule that decided (see the module's docstring)
    category: str
    target: str
    run: int
    backup: str          # the file, relative to the tree
    created_ts: float    # when it was made (the index's time): e.g. for compress_after_days


class Limits(NamedTuple):
    retention_days: int
    max_backups: int


def limits(settings: BackupSettings, category: str) -> Limits:
    """A category's retention days and count: its own table's, else the top level's."""
    own = settings.limits(category)
    default_max = int(getattr(settings, categories.get(category).keep)) \
        if category in categories.BY_NAME else settings.max_backups_per_type
    days = own.retention_days if own.retention_days is not None else settings.retention_days
    count = own.max_backups_per_type if own.max_backups_per_type is not None else default_max
    return Limits(days, max(count, 1))


def holds_backup(row: ChangeRow) -> bool:
    """Whether the row holds a backup file the index vouches for (what prune judges)."""
    return row.backup is not None and not row.pruned and row.state in HOLDS_BACKUP


def _undoable(row: ChangeRow) -> bool:
    """A change a step-back rollback would undo: live, not undone, it wrote something."""
    return row.state in LIVE and row.undone_by is None and row.action != Action.ADOPT


def _chains(rows: list[ChangeRow], runs: dict[int, RunRow]) -> dict[tuple[str | None, str],
                                                                       list[int]]:
    """(project, category) -> the runs step-back rollbacks would undo, newest first.

    As ``Runs.undoable``: not a rollback, done or interrupted, with an undoable change in
    the category; a project sees its own runs and those recorded before runs named one.
    """
    by_category: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        run = runs.get(row.run)
        if run is not None and _undoable(row) and run.kind != RunKind.ROLLBACK \
                and run.state in UNDOABLE_RUNS:
            by_category[row.category].add(row.run)
    projects: set[str | None] = {r.project for r in runs.values() if r.project is not None}
    chains: dict[tuple[str | None, str], list[int]] = {}
    for project in projects or {None}:
        for category, ids in by_category.items():
            chains[(project, category)] = sorted(
                (i for i in ids if runs[i].project in (project, None)), reverse=True)
    return chains


def verdicts(rows: Iterable[ChangeRow], runs: Iterable[RunRow], settings: BackupSettings,
             now: float | None = None) -> list[Verdict]:
    """A verdict for every row of ``rows`` that holds a backup, oldest first.

    ``rows``: the index's change rows that hold a backup, plus the undoable ones without
    (a created target has none; it still is a step of a rollback chain): what
    ``Changes.for_retention`` returns. ``runs``: every run (its state, kind, project and
    whether it is kept). Pure: it reads nothing else, and the same input gives the same
    verdicts.
    """
    now = time.time() if now is None else now
    all_rows = sorted(rows, key=lambda r: r.seq)
    known: dict[str, Limits] = {}

    def limits_of(category: str) -> Limits:
        found = known.get(category)
        if found is None:
            found = known[category] = limits(settings, category)
        return found

    run_of = {r.id: r for r in runs}
    held = [r for r in all_rows if holds_backup(r)]
    keep: dict[int, tuple[str, str]] = {}  # seq -> (rule, reason), the strongest first

    def promise(seq: int, rule: str, reason: str) -> None:
        keep.setdefault(seq, (rule, reason))

    by_target: dict[str, list[ChangeRow]] = defaultdict(list)
    for row in held:
        by_target[row.target].append(row)
    for group in by_target.values():
        promise(group[-1].seq, "newest", "the newest backup of its target")
    by_run: dict[int, list[ChangeRow]] = defaultdict(list)
    for row in all_rows:
        by_run[row.run].append(row)
    for run in run_of.values():
        if run.kept or run.state == RunState.RUNNING:
            rule, why = ("kept-run", f"part of run {run.id}, kept (history.keep)") if run.kept \
                else ("running", f"part of run {run.id}, which is still running")
            for row in by_run.get(run.id, ()):
                if holds_backup(row):
                    promise(row.seq, rule, why)
    chains = _chains(all_rows, run_of)
    for (_project, category), chain in sorted(chains.items(), key=lambda kv: kv[0][1]):
        if not chain:
            continue
        latest = chain[0]
        days, most = limits_of(category)
        for row in by_run[latest]:
            if holds_backup(row):
                promise(row.seq, "latest", f"needed to undo run {latest}, the latest "
                        f"not-undone run of {category}")
        if any(not holds_backup(r) for r in by_run[latest]
               if r.category == category and _undoable(r) and r.backup is not None):
            continue  # the latest cannot be undone: no step-back gets past it
        for depth, run_id in enumerate(chain[1:most], start=2):
            steps = [r for r in by_run[run_id] if r.category == category and _undoable(r)
                     and r.backup is not None]
            if any(not holds_backup(r) or now - r.created_ts > days * DAY for r in steps):
                break  # step-back stops at a run it cannot undo or no longer promises
            for row in steps:
                promise(row.seq, "step-back", f"needed to step back through run {run_id} of "
                        f"{category}: step {depth} of the {most} promised "
                        "(max_backups_per_type)")
    out = []
    for group in by_target.values():
        newer = 0  # counted backups of this target newer than the row at hand
        for row in reversed(group):
            days, most = limits_of(row.category)
            of = run_of.get(row.run)
            counted = of is None or of.state not in UNCOUNTED
            age = (now - row.created_ts) / DAY
            if row.seq in keep:
                rule, reason = keep[row.seq]
            elif age > days:
                rule, reason = "too-old", (f"older than retention_days: {age:.1f} days old, "
                                           f"retention {days} days for {row.category}")
            elif newer >= most:
                rule, reason = "too-many", (f"beyond max_backups_per_type for its target: "
                                            f"{newer} newer backup(s), max {most} for "
                                            f"{row.category}")
            else:
                uncounted = "" if counted else \
                    f"; run {row.run} {of.state if of else '?'}: it does not use up the count"
                rule, reason = "within", (f"within count and age: {newer} newer backup(s) of "
                                          f"max {most}, {age:.1f} of {days} days{uncounted}")
            if counted:
                newer += 1
            assert row.backup is not None
            stored = str(row.stored)  # ``<name>.zst`` when compressed
            out.append(Verdict(row.seq, stored.rpartition("/")[2],
                               REMOVE if rule in ("too-old", "too-many") else KEEP,
                               reason, rule, row.category, row.target, row.run, stored,
                               row.created_ts))
    return sorted(out, key=lambda v: v.id)


def doomed(found: Iterable[Verdict]) -> list[int]:
    """The ids of the backups the verdicts remove, oldest first."""
    return sorted(v.id for v in found if v.action == REMOVE)


def with_compression(found: list[Verdict], rows: Iterable[ChangeRow],
                     settings: BackupSettings, now: float | None = None) -> list[Verdict]:
    """The verdicts with ``compress`` for each kept backup that compression is due for
    (``deploy.store.compress.due``: plain, older than ``compress_after_days``, not the
    newest of its target), its rule kept; unchanged while compression is off. Pure."""
    if not settings.compression_enabled:
        return found
    kept = {v.id for v in found if v.action == KEEP}
    due = {r.seq for r in store.compression_due([r for r in rows if holds_backup(r)],
                                                settings.compress_after_days, now)}
    days = settings.compress_after_days
    return [v._replace(action=COMPRESS, reason=f"{v.reason}; older than compress_after_days "
                       f"({days} day(s)): to be stored as {v.filename}.zst")
            if v.id in due and v.id in kept else v for v in found]


def compressing(found: Iterable[Verdict]) -> list[int]:
    """The ids of the backups the verdicts compress, oldest first."""
    return sorted(v.id for v in found if v.action == COMPRESS)


class Pruned(NamedTuple):
    """What one prune decided and did: every verdict, the rows it removed, and what became
    of each backup it compressed."""

    verdicts: list[Verdict]
    removed: list[ChangeRow]
    compressed: tuple[store.Compressed, ...] = ()


def judge(index: Index, settings: BackupSettings, now: float | None = None) -> list[Verdict]:
    """The verdicts over everything ``index`` holds (every project: the tree is one)."""
    rows = index.changes.for_retention()
    return with_compression(verdicts(rows, index.runs.newest(), settings, now), rows,
                            settings, now)


def prune(sess: Session, settings: BackupSettings, now: float | None = None) -> Pruned:
    """Judge under the session's lock, then remove what the verdicts remove (durably:
    ``deploy.store.prune``) and compress what they compress (``deploy.store.compress``),
    after tidying what a compression cut short left."""
    store.tidy_compression(sess)
    rows = sess.index.changes.for_retention()
    found = with_compression(verdicts(rows, sess.index.runs.newest(), settings, now), rows,
                             settings, now)
    gone, squeeze = set(doomed(found)), set(compressing(found))
    removed = store.delete_backups(sess, [r for r in rows if r.seq in gone])
    return Pruned(found, removed,
                  tuple(store.compress_backups(sess, [r for r in rows if r.seq in squeeze])))
