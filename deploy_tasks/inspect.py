"""``history`` and the ``backups`` collection: status, list, prune, legacy, migrate.

``backups.verify`` and ``backups.reindex`` live in ``deploy_tasks.integrity``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from invoke import Context

from deploy_tasks.common import (
    READ_HELP,
    Record,
    config_and_store,
    echo,
    emit_json,
    guarded,
)
from deploy_tasks.flags import task

if TYPE_CHECKING:
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
        for category in NAMES:
            rows = index.changes.backups(category=category, limit=limit or None,
                                         project=project) if index else []
            folder = store.tree / category_folder(category, "").rstrip("/")
            out[category] = {
                "backup_directory": str(folder),
                "backup_directory_exists": folder.is_dir(),
                "backup_count": index.changes.backup_count(category, project) if index else 0,
                "backups": [{k: v for k, v in _backup_record(store, r, now).items()
                             if k in ("filename", "path", "size", "created", "age_hours",
                                      "target", "sha256", "backup_id")} for r in rows]}
    template = cfg.framework_template
    if json_:
        # The original's status fields too (framework_template_path and _exists).
        emit_json({"backup_tree": str(store.tree),
                   "framework_template_path": str(template) if template else None,
                   "framework_template_exists": template is not None and template.is_file(),
                   "categories": out})
        return
    echo(f"backup tree: {store.tree}")
    for category, info in out.items():
        echo(f"{category:<10} {info['backup_count']:>6} backup(s)  {info['backup_directory']}")
        for b in info["backups"]:
            echo(f"           {b['backup_id']:>6}  {b['created'][:19]}  {b['filename']}")


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
