"""Verifying the tree against its index (``backups.verify``, issue 13 "Integrity").

Four kinds of problem, each named with its path:

- ``missing``: a row vouches for a backup file that is gone;
- ``corrupt``: the file is there but is not what the row vouches for (its sha256 differs,
  through zstd for a ``.zst``; or it is a symlink, not a regular file, not ours, unreadable,
  a frame that does not decompress, or a hard link with a name the index does not record);
- ``orphan``: a file in the category folders that no row vouches for: never indexed, or
  its row was pruned (a pruned row's file should be gone) or never confirmed (``void``);
- ``index``: the index is missing while the tree holds backups, does not open as SQLite,
  or fails SQLite's ``PRAGMA integrity_check``.

A row vouches for its file when it holds a backup (not pruned, in a state of
``HOLDS_BACKUP``): the rows ``backups.list`` shows and a rollback may restore.

Over a healthy index the check runs in a session (the lock held, killed runs recovered),
so no run changes the tree under it and what it reports is one moment's truth; its
outcome is then written to the index's meta table (``last_verify``) for the status task.
A missing or broken index is only read: nothing is written into (or next to) it.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple

from deploy.errors import ConfigError
from deploy.plan import tick
from deploy.store import stored
from deploy.store.index import ChangeRow, Index, IndexError_, NoIndexYet
from deploy.store.index.rows import ZST
from deploy.store.session import Session
from deploy.store.tree import Store, now_iso

MISSING, CORRUPT, ORPHAN, INDEX = "missing", "corrupt", "orphan", "index"
KINDS = (MISSING, CORRUPT, ORPHAN, INDEX)
# What index_health finds: no file; a file with no tables yet; an index that opens and
# passes SQLite's integrity check; one that does not.
ABSENT, EMPTY, HEALTHY, BROKEN = "absent", "empty", "healthy", "corrupt"
LAST_VERIFY = "last_verify"  # the meta key of the last verify's outcome
SHOWN_FILES = 3

# Opens the session a verify of a healthy index runs in (the task layer's ``writing``).
Opener = Callable[[], AbstractContextManager[Session]]


class Problem(NamedTuple):
    """One thing wrong with the tree: its kind, the file, the row (if one names it)."""

    kind: str
    path: Path
    id: int | None
    detail: str

    @property
    def message(self) -> str:
        """One line naming the file and what is wrong with it."""
        return f"{self.path}: {self.detail}"


class Health(NamedTuple):
    """What the index file is: ``state`` one of ABSENT, EMPTY, HEALTHY, BROKEN."""

    state: str
    detail: str = ""
    runs: int = 0


class Verification(NamedTuple):
    """A verify's outcome: rows re-hashed of those the index vouches for, the problems,
    and when it was recorded as the last verify (None: not recorded)."""

    checked: int
    vouched: int
    sample: int | None
    problems: tuple[Problem, ...]
    recorded: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))


def _after_path(message: str, path: Path) -> str:
    """A message of ours without its leading ``path: `` (the problem carries the path)."""
    return message.removeprefix(f"{path}: ")


def index_health(store: Store) -> Health:
    """Whether the index file is absent, has no tables yet, is healthy, or is broken
    (fails to open, or fails ``PRAGMA integrity_check``); opened read-only."""
    path = store.index_path
    if not os.path.lexists(path):
        return Health(ABSENT)
    try:
        index = Index(path, readonly=True)
    except NoIndexYet:
        return Health(EMPTY, "the backup index holds no tables")
    except IndexError_ as err:
        return Health(BROKEN, _after_path(str(err), path))
    try:
        problems = index.integrity_problems()
        runs = index.runs.count()
    except IndexError_ as err:
        return Health(BROKEN, _after_path(str(err), path))
    finally:
        index.close()
    if problems:
        more = f" and {len(problems) - SHOWN_FILES} more" if len(problems) > SHOWN_FILES else ""
        return Health(BROKEN, "the backup index fails SQLite's integrity check: "
                      + "; ".join(problems[:SHOWN_FILES]) + more)
    return Health(HEALTHY, runs=runs)


def check_row(store: Store, row: ChangeRow, index: Index | None = None,
              links: stored.LinkCache | None = None) -> Problem | None:
    """Re-hash the backup file of one row that vouches for it, through zstd when it is
    compressed (``Store.check_backup``'s test and wording, with the kind of problem kept
    apart); with ``index``, a file with hard links must have only names it records."""
    found = stored.problem(store.tree, index, row, links)
    if found is None:
        return None
    return Problem(found[0], store.backup_path(row), row.seq, found[1])


def _orphan(index: Index | None, store: Store, path: Path) -> Problem:
    rel = str(path.relative_to(store.tree))
    row = index.changes.naming(rel) if index else None
    if row is None and index is not None and rel.endswith(ZST):
        plain = index.changes.naming(rel.removesuffix(ZST))
        if plain is not None and not plain.compressed and not plain.pruned:
            return Problem(ORPHAN, path, plain.seq, f"a compressed copy of backup {plain.seq} "
                           "that a compression cut short left; the next `invoke "
                           "backups.prune` removes it")
    if row is None:
        return Problem(ORPHAN, path, None, "not in the backup index: no row names this file")
    if row.pruned:
        return Problem(ORPHAN, path, row.seq, f"backup {row.seq} was pruned, but its file "
                       "is still in the tree")
    if row.compressed:
        return Problem(ORPHAN, path, row.seq, f"backup {row.seq} is stored compressed "
                       f"({path.name}{ZST}); this plain copy a compression cut short left; "
                       "the next `invoke backups.prune` removes it")
    return Problem(ORPHAN, path, row.seq, f"backup {row.seq} is {row.state} (its run never "
                   "confirmed it), but its file is in the tree")


def check(store: Store, index: Index, *, sample: int | None = None,
          rng: random.Random | None = None,
          interrupt: Callable[[str], None] = lambda _outcome: None) -> Verification:
    """Re-hash every backup ``index`` vouches for (or ``sample`` of them, drawn at random)
    and find the orphans among the tree's files."""
    rows = index.changes.backups()
    chosen = rows
    if sample is not None and sample < len(rows):
        chosen = (rng or random.Random()).sample(rows, sample)
    problems: list[Problem] = []
    links: stored.LinkCache = {}
    for n, row in enumerate(sorted(chosen, key=lambda r: r.seq), 1):
        interrupt("nothing was recorded")
        tick("verifying", n, len(chosen), f"{row.category}/{row.key}")
        found = check_row(store, row, index, links)
        if found is not None:
            problems.append(found)
    vouched = index.changes.vouched_backups()
    problems += [_orphan(index, store, path) for path in store.backup_files()
                 if str(path.relative_to(store.tree)) not in vouched]
    return Verification(len(chosen), len(rows), sample, tuple(problems))


def _index_problem(store: Store, health: Health, files: list[Path]) -> Problem | None:
    """The index's own problem: broken, or absent (or empty) while the tree holds files."""
    if health.state == BROKEN:
        return Problem(INDEX, store.index_path, None,
                       f"{health.detail}; `invoke backups.reindex` moves it aside and "
                       "rebuilds it from the tree")
    if health.state == HEALTHY or not files:
        return None
    shown = ", ".join(str(f.relative_to(store.tree)) for f in files[:SHOWN_FILES])
    more = f" and {len(files) - SHOWN_FILES} more" if len(files) > SHOWN_FILES else ""
    what = "is missing" if health.state == ABSENT else "holds no tables"
    return Problem(INDEX, store.index_path, None,
                   f"the backup index {what}, but the tree holds {len(files)} backup(s) it "
                   f"cannot account for ({shown}{more}); `invoke backups.reindex` rebuilds "
                   "it from the tree")


def verify(store: Store, *, sample: int | None = None, rng: random.Random | None = None,
           session: Opener | None = None) -> Verification:
    """Verify the tree against its index; over a healthy index, in ``session`` (when
    given), recording the outcome as the last verify."""
    if sample is not None and sample < 1:
        raise ConfigError(f"--sample {sample}: sample at least 1 backup")
    if not store.check_trust():
        return Verification(0, 0, sample, ())
    health = index_health(store)
    if health.state == HEALTHY and session is not None:
        with session() as sess:
            found = check(store, sess.index, sample=sample, rng=rng,
                          interrupt=sess.signals.check)
            return found._replace(recorded=record(sess.index, found))
    files = store.backup_files()
    first = _index_problem(store, health, files)
    head = (first,) if first is not None else ()
    try:
        with store.reading() as index:
            if index is not None:
                found = check(store, index, sample=sample, rng=rng)
                return found._replace(problems=head + found.problems)
    except IndexError_:
        pass  # the index does not open (or breaks while read): it accounts for nothing
    return Verification(0, 0, sample, head + tuple(_orphan(None, store, f) for f in files))


def record(index: Index, found: Verification) -> str:
    """Write the outcome into the meta table as the last verify; returns its time."""
    when = now_iso()
    value = {"finished": when, "ok": found.ok, "checked": found.checked,
             "vouched": found.vouched, "sample": found.sample,
             "problems": len(found.problems), "kinds": found.kinds()}
    with index.transaction():
        index.meta.put(LAST_VERIFY, json.dumps(value, sort_keys=True))
    return when


def last_verify(index: Index) -> dict[str, Any] | None:
    """The last verify's outcome as recorded (None if no verify recorded one)."""
    text = index.meta.get(LAST_VERIFY)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
