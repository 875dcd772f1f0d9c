"""``history`` and the ``backups`` collection: status, list, prune, legacy, migrate.

``backups.verify`` and ``backups.reindex`` live in ``deploy_tasks.integrity``.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from invoke import Context

from deploy_tasks import actions
from deploy_tasks.common import (
    READ_HELP,
    SCHEMA_VERSION,
    WRITE_HELP,
    Record,
    config_and_store,
    echo,
    emit_json,
    guarded,
    write_text,
    writing,
)
from deploy_tasks.flags import task

if TYPE_CHECKING:
    from deploy.config import BackupSettings, Config
    from deploy.retention import Verdict
    from deploy.store import ChangeRow, Index, RunRow, Store


def _run_record(index: Index, run: RunRow) -> Record:
    return {"id": run.id, "kind": run.kind, "actor": run.actor, "started": run.started,
            "finished": run.finished, "state": run.state,
            "categories": [x for x in run.categories.split(",") if x],
            "changed": index.runs.changed(run.id), "undoes": run.undoes, "command": run.command,
            "project": run.project, "commit": run.git_commit, "ref": run.git_ref,
            "ci_url": run.ci_url, "kept": bool(run.kept)}


def _came_from(r: Record) -> str:
    """Where a run came from, for the history table: the short commit and the ref (its CI
    run's page follows on a line of its own)."""
    parts = [r["commit"][:7] if r["commit"] else "-"]
    if r["ref"]:
        parts.append(r["ref"])
    return " ".join(parts)


ALL_PROJECTS = {"all_projects": "show the runs and backups of every project on this machine, "
                                "not only this one's (its config file)"}


def _project(store: Store, all_projects: bool) -> str | None:
    return None if all_projects else store.project


@task(help={"limit": "at most this many runs (default 50; 0 = all)",
            "page": "page number, from 1", **ALL_PROJECTS, **READ_HELP})
@guarded
def history(c: Context, limit: int = 50, page: int = 1, all_projects: bool = False,
            json_: bool = False, prefix: str | None = None) -> None:
    """The runs, newest first: kind, actor, state, categories and how many targets changed."""
    from deploy.errors import ConfigError
    from deploy_tasks.flags import INT64_MAX

    offset = (page - 1) * limit
    if offset > INT64_MAX:  # SQLite's OFFSET is a 64-bit integer too
        raise ConfigError(f"--page {page}: out of range for --limit {limit}; (page - 1) x "
                          f"limit must stay at most {INT64_MAX}")
    _cfg, store = config_and_store(prefix)
    project = _project(store, all_projects)
    with store.reading() as index:
        runs = [_run_record(index, run)
                for run in index.runs.newest(limit or None, offset, project)] if index else []
        total = len(index.runs.newest(project=project)) if index and not runs else 0
    if json_:
        emit_json({"runs": runs, "page": page, "limit": limit})
        return
    if not runs:
        echo(f"no runs on page {page}: {total} run(s) in all, {limit} a page" if total
             else "no runs yet")
        return
    echo(f"{'run':>5}  {'started':<19}  {'kind':<8} {'state':<11} {'changed':>12}  "
         f"{'actor':<10} {'commit':<16} categories")
    for r in runs:
        undoes = f" (undoes run {r['undoes']})" if r["undoes"] else ""
        kept = " (kept)" if r["kept"] else ""
        echo(f"{r['id']:>5}  {r['started'][:19]}  {r['kind']:<8} {r['state']:<11} "
             f"{r['changed']:>4} changed  {r['actor']:<10} {_came_from(r):<16} "
             f"{','.join(r['categories']) or '-'}{undoes}{kept}")
        if r["ci_url"]:
            echo(f"{'':>7}{r['ci_url']}")


@task(help={"run": "the run to mark kept (see `invoke history`)",
            "off": "clear the mark instead: retention judges its backups like any others",
            **WRITE_HELP})
@guarded
def keep(c: Context, run: int | None = None, off: bool = False, dry_run: bool = False,
         json_: bool = False, wait: int = 0, prefix: str | None = None) -> None:
    """Mark a run kept: backups.prune (and auto_prune, and the framework's rotation) never
    removes its backups; --off clears the mark."""
    from deploy.errors import ConfigError

    if run is None:
        raise ConfigError("history.keep needs --run N (see `invoke history`)")
    _cfg, store = config_and_store(prefix)

    def known(index: Index | None) -> RunRow:
        found = index.runs.get(run) if index is not None else None
        if found is None:
            raise ConfigError(f"no run {run} in the index; see `invoke history`")
        return found

    with store.reading() as index:
        row = known(index)
        assert index is not None
        backups = sum(1 for r in index.changes.of_run(run) if r.backup and not r.pruned)
    if not dry_run and bool(row.kept) == (not off):
        pass  # already so: no lock, nothing written
    elif not dry_run:
        with writing(store, wait) as sess:
            known(sess.index)
            with sess.index.transaction():
                sess.index.runs.set_kept(run, not off)
        # Under GitHub Actions: the mark is the one thing it changed (no target).
        actions.note_rows(None, [actions.Row("unkeep" if off else "keep", f"run {run}",
                                             None, None)])
    if json_:
        emit_json({"run": run, "kept": not off, "dry_run": dry_run, "backups": backups})
        return
    state = ("would no longer be kept" if dry_run else "no longer kept") if off \
        else ("would be kept" if dry_run else "kept")
    then = f"retention judges its {backups} backup(s) like any others" if off \
        else f"prune never removes its {backups} backup(s)"
    echo(f"run {run}: {state}; {then}")


def _backup_record(store: Store, row: ChangeRow, now: float) -> Record:
    path = store.backup_path(row)
    # `id` is the contract's name in backups.list; `backup_id` the name of the backup id in
    # every shape (issue 14), the same number.
    return {"id": row.seq, "backup_id": row.seq, "category": row.category, "target": row.target,
            "filename": path.name, "path": str(path), "size": row.old_size,
            "created": row.created, "age_hours": round((now - row.created_ts) / 3600, 2),
            "sha256": row.old_sha256, "run": row.run, "mode": f"{row.old_mode:04o}"}


@task(help={"limit": "list at most this many backups per category (default 20; 0 = all)",
            **ALL_PROJECTS, **READ_HELP})
@guarded
def status(c: Context, limit: int = 20, all_projects: bool = False, json_: bool = False,
           prefix: str | None = None) -> None:
    """Per category: backup_directory, backup_count and the backups, newest first."""
    from deploy.categories import NAMES
    from deploy.store import category_folder

    cfg, store = config_and_store(prefix)
    project = _project(store, all_projects)
    now = time.time()
    out: dict[str, Record] = {}
    with store.reading() as index:
        usage, on_disk = index.changes.usage(project) if index else ({}, 0)
        for category in NAMES:
            rows = index.changes.backups(category=category, limit=limit or None,
                                         project=project) if index else []
            folder = store.tree / category_folder(category, "").rstrip("/")
            n, logical, physical, zst, oldest, newest = usage.get(category,
                                                                  (0, 0, 0, 0, None, None))
            out[category] = {
                "backup_directory": str(folder),
                "backup_directory_exists": folder.is_dir(),
                "backup_count": n,
                "logical_bytes": logical, "physical_bytes": physical, "compressed_count": zst,
                "oldest": oldest, "newest": newest,
                "backups": [{k: v for k, v in _backup_record(store, r, now).items()
                             if k in ("filename", "path", "size", "created", "age_hours",
                                      "target", "sha256", "backup_id")} for r in rows]}
        tree = _tree_status(cfg, store, index, on_disk)
    template = cfg.framework_template
    if json_:
        # The original's status fields too (framework_template_path and _exists).
        emit_json({"backup_tree": str(store.tree),
                   "framework_template_path": str(template) if template else None,
                   "framework_template_exists": template is not None and template.is_file(),
                   **tree, "categories": out})
        return
    echo(f"backup tree: {store.tree}")
    _echo_tree(tree)
    for category, info in out.items():
        echo(f"{category:<10} {info['backup_count']:>6} backup(s)  {info['backup_directory']}")
        if info["backup_count"]:
            echo(f"           {_size(info['logical_bytes'])} logical, "
                 f"{_size(info['physical_bytes'])} on disk, {info['compressed_count']} "
                 f"compressed; oldest {info['oldest'][:19]}, newest {info['newest'][:19]}")
        for b in info["backups"]:
            echo(f"           {b['backup_id']:>6}  {b['created'][:19]}  {b['filename']}")


def _tree_status(cfg: Config, store: Store, index: Index | None, physical: int) -> Record:
    """The tree's own status: bytes on disk (each inode once), the last verify, the lock's
    holder and how many legacy backups lie in the old locations; nothing is hashed."""
    from deploy import legacy
    from deploy.store import last_verify, owned_by

    verify = last_verify(index) if index else None
    return {"physical_bytes": physical,
            "last_verify": {"finished": verify.get("finished"), "ok": verify.get("ok"),
                            "problems": verify.get("problems")} if verify else None,
            "lock_holder": store.lock_holder(),
            "legacy_backups": len(legacy.find(cfg, owned=owned_by(store, index)).found)}


def _echo_tree(tree: Record) -> None:
    verify, holder = tree["last_verify"], tree["lock_holder"]
    echo(f"on disk: {_size(tree['physical_bytes'])} (hard-linked copies counted once)")
    if verify is None:
        echo("last verify: never (invoke backups.verify)")
    else:
        outcome = "ok" if verify["ok"] else f"{verify['problems']} problem(s)"
        echo(f"last verify: {str(verify['finished'])[:19]}  {outcome}")
    if holder is None:
        echo("lock: free")
    else:
        echo(f"lock: held by pid {holder['pid']} ({holder['command']!r}, since "
             f"{holder['started']})")
    if tree["legacy_backups"]:
        echo(f"legacy backups: {tree['legacy_backups']} in the old locations "
             "(invoke backups.legacy)")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@task(help={"category": "only this category", "limit": "at most this many (default all)",
            **ALL_PROJECTS, **READ_HELP})
@guarded
def list_(c: Context, category: str | None = None, limit: int = 0, all_projects: bool = False,
          json_: bool = False, prefix: str | None = None) -> None:
    """Every backup with its id, newest first."""
    from deploy.categories import NAMES
    from deploy.errors import ConfigError

    if category is not None and category not in NAMES:
        raise ConfigError(f"unknown category {category!r}; one of {', '.join(NAMES)}")
    _cfg, store = config_and_store(prefix)
    now = time.time()
    with store.reading() as index:
        rows = index.changes.backups(category=category, limit=limit or None,
                                     project=_project(store, all_projects)) if index else []
        records = [_backup_record(store, r, now) for r in rows]
    if json_:
        emit_json({"backups": records})
        return
    if not records:
        echo("no backups yet")
        return
    echo(f"{'id':>6}  {'created':<19}  {'category':<10} {'file':<48} target")
    for b in records:
        echo(f"{b['id']:>6}  {b['created'][:19]}  {b['category']:<10} {b['filename']:<48} "
             f"{b['target']}")


def verdict_record(tree: str, v: Verdict) -> Record:
    # The path by joining strings: a Path per backup cost a tenth of a 100,000-backup prune.
    return {"id": v.id, "backup_id": v.id, "filename": v.filename, "action": v.action,
            "reason": v.reason, "rule": v.rule, "category": v.category, "target": v.target,
            "run": v.run, "path": f"{tree}/{v.backup}"}


def emit_listing(document: Record) -> None:
    """``emit_json`` for a document of long lists: each item of a top-level list on one
    line, by the C encoder (json's indenting encoder is pure Python: two thirds of a
    100,000-backup ``prune --json``). The same JSON, laid out one backup a line."""
    import json

    encode = json.JSONEncoder(default=str).encode  # one encoder: dumps(default=) makes one a call
    parts = []
    for key, value in {"schema_version": SCHEMA_VERSION, **document}.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {encode(item)}" for item in value)
            parts.append(f"  {encode(key)}: [\n{items}\n  ]")
        else:
            parts.append(f"  {encode(key)}: {encode(value)}")
    write_text("{\n" + ",\n".join(parts) + "\n}\n")
    actions.note_emitted()


def print_verdicts(records: list[Record], *, dry_run: bool, removed: int,
                   finished: int) -> None:
    """The table of every backup's verdict, then one summary line."""
    if finished:
        echo(f"note: finished {finished} removal(s) a killed prune had left")
    if records:
        echo(f"{'id':>6}  {'action':<8} {'rule':<10} {'category':<10} {'file':<44} reason")
    for r in records:
        echo(f"{r['id']:>6}  {r['action']:<8} {r['rule']:<10} {r['category']:<10} "
             f"{r['filename']:<44} {r['reason']}")
    verb = "would remove" if dry_run else "removed"
    count = sum(1 for r in records if r["action"] == "remove") if dry_run else removed
    rules = Counter(r["rule"] for r in records if r["action"] != "remove")
    why = ", ".join(f"{n} {rule}" for rule, n in sorted(rules.items()))
    echo(f"{verb} {count} of {len(records)} backup(s); kept {len(records) - count}"
         f"{f' ({why})' if why else ''} ({datetime.now():%Y-%m-%d %H:%M})")


@task(help=WRITE_HELP)
@guarded
def prune(c: Context, dry_run: bool = False, json_: bool = False, wait: int = 0,
          prefix: str | None = None) -> None:
    """Apply retention: every backup with its verdict (keep or remove) and the reason.

    Kept: the newest of its target, the backups of a kept run (history.keep), of the
    latest not-undone run of each category, those the promised step-back rollbacks need,
    and those within count and age; removed: older than retention_days, or beyond
    max_backups_per_type (framework_keep for the framework) of its target. Per category,
    [tool.deploy.backup.<category>] overrides both. Backups of failed and interrupted runs
    do not use up the count.
    """
    from deploy import retention

    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        found = retention.judge(index, cfg.backup) if index else []
        # A killed prune's pending rows are finished by any session: take one for them too.
        busy = index is not None and bool(index.changes.pending_prune(2)
                                          or index.runs.running()
                                          or _leftovers(cfg.backup, store, index))
    removed: list[ChangeRow] = []
    compressed: list[Record] = []
    finished = 0
    if not dry_run and (busy or retention.doomed(found) or retention.compressing(found)):
        with writing(store, wait) as sess:
            finished = sess.prunes_finished
            found, removed, squeezed = retention.prune(sess, cfg.backup)
            compressed = [{"id": d.row.seq, "backup_id": d.row.seq, "path": str(d.path),
                           "outcome": d.outcome,
                           "size": d.row.old_size, "stored_size": d.stored_size,
                           "detail": d.detail} for d in squeezed]
    tree = str(store.tree)
    records = [verdict_record(tree, v) for v in found]
    for d in compressed:  # on stderr, with --json too
        if d["outcome"] == "skipped":
            echo(f"warning: {d['path']}: {d['detail']}", err=True)
    # The step summary lists what goes (a dry run: what would go).
    going = [v for v in found if v.action != "keep"]
    rows = (actions.Row(v.action, v.target, v.backup, v.id) for v in going)
    if dry_run:
        actions.note_dry_run(rows)
    elif removed or compressed:
        actions.note_rows(None, rows)
    if json_:
        emit_listing({"dry_run": dry_run, "backups": records, "finished_pending": finished,
                      "pruned": [{"id": r.seq, "backup_id": r.seq, "category": r.category,
                                  "target": r.target, "path": str(store.backup_path(r))}
                                 for r in removed],
                      "compressed": compressed})
        return
    print_verdicts(records, dry_run=dry_run, removed=len(removed), finished=finished)
    _echo_compressed(compressed)


def _leftovers(settings: BackupSettings, store: Store, index: Index) -> bool:
    """Whether a compression cut short left files for prune to tidy (looked for only while
    compression is on: a walk of the tree)."""
    from deploy.store import compression_leftovers, stale_temps

    return settings.compression_enabled and bool(compression_leftovers(store, index)
                                                 or stale_temps(store))


def _echo_compressed(compressed: list[Record]) -> None:
    """One line per backup compressed (or linked to an equal .zst)."""
    for d in compressed:
        if d["outcome"] == "skipped":
            continue
        how = "compressed" if d["outcome"] == "compressed" else "linked    "
        echo(f"{how} {d['id']:>6}  {d['path']}  ({d['size']} -> {d['stored_size']} bytes)")
    done = [d for d in compressed if d["outcome"] != "skipped"]
    if done:
        before = sum(d["size"] or 0 for d in done)
        after = sum(d["stored_size"] or 0 for d in done)
        echo(f"compressed {len(done)} backup(s): {before} -> {after} bytes")
