"""``backups.legacy`` and ``backups.migrate``: the original's backups in its old locations.

Nothing migrates by itself. ``backups.legacy`` lists what lies in the old places (and
the target each file backed up); ``backups.migrate`` copies it into the central tree,
re-hashes every copy against its original, and removes originals only when asked.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from invoke import Context

from deploy_tasks import actions
from deploy_tasks.common import (
    READ_HELP,
    WRITE_HELP,
    Output,
    Record,
    config_and_store,
    echo,
    emit_json,
    guarded,
    id_keys,
    planned_record,
    writing,
)
from deploy_tasks.flags import task

if TYPE_CHECKING:
    from pathlib import Path

    from deploy.config import Config
    from deploy.legacy import LegacyBackup, Scan
    from deploy.store import Index, Item, Migration, Store

MIGRATE_HELP = {
    "remove_originals": "after the import is committed, remove each original whose copy in "
                        "the tree re-hashed equal to it (a failed removal is a warning)",
    **WRITE_HELP,
}


def printable(path: Path | str | None) -> str:
    """A path for a line of output: every character that is not printable escaped, so a
    file name can never forge a line (names here come from folders, not from the config)."""
    if path is None:
        return "-"
    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def warn(message: str) -> None:
    """One ``warning:`` line on stderr; under GitHub Actions also a ``::warning`` command
    (and a line of the step summary)."""
    actions.warning(message)


def warn_exposed(found: tuple[LegacyBackup, ...] | list[LegacyBackup],
                 gone: set[Path] | frozenset[Path] = frozenset()) -> None:
    """Warn about each legacy backup (not in ``gone``) that runs as a command: v0.7.5 left
    ``claude-pm.backup.<ts>`` beside the scripts in ``~/.local/bin``, mode 0755."""
    from deploy.legacy import exposed

    for b in found:
        if b.path not in gone and exposed(b):
            warn(f"{printable(b.path)}: a legacy backup is executable and lies on PATH, so it "
                 f"runs as the command {printable(b.path.name)}; remove it (invoke "
                 "backups.migrate --remove-originals) or chmod a-x it")


def _record(b: LegacyBackup) -> Record:
    from deploy.legacy import exposed

    return {"category": b.category, "key": b.key, "path": str(b.path),
            "target": str(b.target) if b.target is not None else None, "size": b.size,
            "mode": f"{b.mode:04o}", "time": b.when.isoformat(), "origin": b.origin,
            "location": b.location, "migratable": b.migratable, "reason": b.reason,
            "executable": bool(b.mode & 0o111), "on_path": exposed(b)}


def _scan(cfg: Config, store: Store, index: Index | None) -> Scan:
    """The legacy files of this config, minus what the index says is the toolkit's."""
    from deploy import legacy as old
    from deploy.store import owned_by

    return old.find(cfg, owned=owned_by(store, index))


def _items(scan: Scan) -> list[Item]:
    from deploy.store import Item

    return [Item(b.category, b.key, b.path, b.target, b.when)
            for b in scan.found if b.migratable and b.target is not None]


def _print_not_scanned(scan: Scan) -> None:
    for n in scan.not_scanned:
        echo(f"not scanned: {printable(n.path)} ({n.reason})")


@task(hosts=False, help=READ_HELP)
@guarded
def legacy(c: Context, json_: bool = False, prefix: str | None = None) -> None:
    """List backups lying in the old locations, with what each backed up (nothing migrates
    by itself)."""
    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        scan = _scan(cfg, store, index)
    warn_exposed(scan.found)
    if json_:
        emit_json({"legacy": [_record(b) for b in scan.found],
                   "not_scanned": [{"path": str(n.path), "reason": n.reason}
                                   for n in scan.not_scanned]})
        return
    _print_not_scanned(scan)
    if not scan.found:
        echo("no legacy backups found")
        return
    for b in scan.found:
        where = f"-> {printable(b.target)}" if b.migratable else f"({printable(b.reason)})"
        echo(f"{b.origin}  {b.category:<10} {printable(b.path)}  {where}")
    offered = sum(b.migratable for b in scan.found)
    echo(f"{len(scan.found)} legacy backup(s), {offered} to migrate "
          "(invoke backups.migrate)")


@task(hosts=False, help=MIGRATE_HELP)
@guarded
def migrate(c: Context, dry_run: bool = False, remove_originals: bool = False,
            json_: bool = False, wait: int = 0, prefix: str | None = None) -> None:
    """Copy legacy backups into the central tree, verify each copy, and with
    --remove-originals remove the originals whose copy verified (opt-in, idempotent)."""
    from deploy.errors import IntegrityError
    from deploy.store import Migration, RunResult, migrate_files, pending

    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        scan = _scan(cfg, store, index)
        items = _items(scan)
        todo = pending(index, items)
        busy = index is not None and bool(index.runs.running())
    if dry_run:
        actions.note_dry_run(actions.Row("import", str(item.target), None, None)
                             for item in todo)
        _dry_run(scan, todo, remove_originals, json_)
        warn_exposed(scan.found)
        return
    outcome = Migration(RunResult(None, ()), (), (), (), (), (), ())
    # The lock only when there is something to do: files to import, originals to remove,
    # or a killed run to recover first.
    if todo or busy or (remove_originals and items):
        with writing(store, wait) as sess:
            # Again under the lock: the index may have moved since the read-only scan.
            scan = _scan(cfg, store, sess.index)
            items = _items(scan)
            outcome = migrate_files(sess, items, remove_originals=remove_originals)
        actions.note_result(outcome.result, tree=store.tree)
    for line in outcome.not_removed:
        warn(line)
    warn_exposed(scan.found, set(outcome.removed))
    _report(store, scan, outcome, json_)
    if outcome.problems:
        raise IntegrityError("; ".join(outcome.problems))


def _dry_run(scan: Scan, todo: list[Item], remove_originals: bool, json_: bool) -> None:
    waiting = {item.path for item in todo}
    offered = [b for b in scan.found if b.migratable]
    if json_:
        emit_json({"run": None, "dry_run": True,
                   "changes": [planned_record(b.category, b.target, "import")
                               | {"source": str(b.path)}
                               for b in offered if b.path in waiting],
                   "already_imported": [str(b.path) for b in offered if b.path not in waiting],
                   "would_remove": [str(b.path) for b in offered] if remove_originals else [],
                   "skipped": [{"path": str(b.path), "reason": b.reason}
                               for b in scan.found if not b.migratable],
                   "not_scanned": [{"path": str(n.path), "reason": n.reason}
                                   for n in scan.not_scanned]})
        return
    _print_not_scanned(scan)
    for b in offered:
        verb = "would import" if b.path in waiting else "in the tree "
        echo(f"{verb} {printable(b.path)}  ({b.category}, for {printable(b.target)})")
        if remove_originals:
            echo(f"would remove {printable(b.path)}  (once its copy verifies)")
    for b in scan.found:
        if not b.migratable:
            echo(f"skip         {printable(b.path)}  ({printable(b.reason)})")
    echo(f"{len(scan.found)} legacy backup(s): {len(todo)} to import, "
          f"{len(offered) - len(todo)} already in the tree, "
          f"{len(scan.found) - len(offered)} not migratable")


def _report(store: Store, scan: Scan, outcome: Migration, json_: bool) -> None:
    result, sources = outcome.result, outcome.sources
    if json_:
        emit_json({
            "run": result.run,
            "changes": [{"category": a.category, "target": str(a.target), "action": a.action,
                         "backup": str(a.backup) if a.backup else None, "source": str(src),
                         **id_keys(a.seq, a.backup)}
                        for a, src in zip(result.changes, sources, strict=True)],
            "verified": [str(item.path) for item in outcome.verified],
            "removed": [str(p) for p in outcome.removed],
            "not_removed": list(outcome.not_removed), "problems": list(outcome.problems),
            "kept": list(outcome.kept), "recovered": list(result.recovered),
            "skipped": [{"path": str(b.path), "reason": b.reason}
                        for b in scan.found if not b.migratable],
            "not_scanned": [{"path": str(n.path), "reason": n.reason}
                            for n in scan.not_scanned]})
        return
    for run in result.recovered:
        echo(f"note: run {run} was killed part way; recorded as interrupted")
    _print_not_scanned(scan)
    if result.run is not None:
        echo(f"run {result.run}: migrate, {len(result.changes)} imported")
    if Output.quiet:
        return
    for a, src in zip(result.changes, sources, strict=True):
        backup = a.backup.relative_to(store.tree) if a.backup else None
        echo(f"  imported {printable(backup)}  (from {printable(src)}, for "
              f"{printable(a.target)}, id {a.seq})")
    for b in scan.found:
        if not b.migratable:
            echo(f"  skipped  {printable(b.path)}  ({printable(b.reason)})")
    for line in outcome.kept:
        echo(f"  kept     {printable(line)}")
    for path in outcome.removed:
        echo(f"  removed  {printable(path)}  (its copy in the tree verified)")
    if result.run is None and not outcome.removed:
        echo("nothing to migrate" + (": every legacy backup is already in the tree"
                                      if any(b.migratable for b in scan.found) else ""))
    if outcome.verified:
        echo(f"{len(outcome.verified)} copy(ies) in the tree verified against their "
              "originals")
