"""Retention tasks (issue 13): ``backups.prune`` and ``history.keep``.

Thin: the verdicts come from ``deploy.retention.verdicts`` (one pure function), the removal
from ``deploy.store.prune``; ``backup.auto_prune`` is ``deploy_tasks.autoprune``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from invoke import Context

from deploy_tasks.common import (
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
    from deploy.retention import Verdict
    from deploy.store import ChangeRow, Index, RunRow


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

    from deploy_tasks import actions

    encode = json.JSONEncoder(default=str).encode  # one encoder: dumps(default=) makes one a call
    parts = []
    for key, value in document.items():
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
    from deploy.store.prune import PENDING
    from deploy_tasks import actions

    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        found = retention.judge(index, cfg.backup) if index else []
        # A killed prune's pending rows are finished by any session: take one for them too.
        busy = index is not None and bool(index.changes.pending_prune(PENDING)
                                          or index.runs.running())
    removed: list[ChangeRow] = []
    finished = 0
    if not dry_run and (busy or retention.doomed(found)):
        with writing(store, wait) as sess:
            finished = sess.prunes_finished
            found, removed = retention.prune(sess, cfg.backup)
    tree = str(store.tree)
    records = [verdict_record(tree, v) for v in found]
    # The step summary and outputs under GitHub Actions: what went, or would go.
    if dry_run:
        actions.note_dry_run(actions.Row("prune", v.target, v.backup, v.id) for v in found
                             if v.action == "remove")
    elif removed:
        actions.note_rows(None, [actions.Row("prune", r.target, r.backup, r.seq)
                                 for r in removed])
    if json_:
        emit_listing({"schema_version": SCHEMA_VERSION, "dry_run": dry_run,
                      "backups": records, "finished_pending": finished,
                      "pruned": [{"id": r.seq, "backup_id": r.seq, "category": r.category,
                                  "target": r.target, "path": str(store.backup_path(r))}
                                 for r in removed]})
        return
    print_verdicts(records, dry_run=dry_run, removed=len(removed), finished=finished)


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
        from deploy_tasks import actions

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
