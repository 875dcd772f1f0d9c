"""``backups.create``: back up configured targets on demand, as a run of their own."""

from __future__ import annotations

from invoke import Context

from deploy_tasks import actions
from deploy_tasks.common import (
    WRITE_HELP,
    Output,
    change_records,
    config_and_store,
    echo,
    emit_json,
    guarded,
    planned_record,
    writing,
)
from deploy_tasks.flags import task


@task(iterable=["category", "name", "id_", "subsystem"],
      help={"category": "only this category (repeatable): scripts, versions, templates, "
                        "framework, parents",
            "name": "only this script (repeatable)", "id_": "only this template id (repeatable)",
            "subsystem": "only this subsystem's version file (repeatable)", **WRITE_HELP})
@guarded
def create(c: Context, category: list[str] | None = None, name: list[str] | None = None,
           id_: list[str] | None = None, subsystem: list[str] | None = None,
           dry_run: bool = False, json_: bool = False, wait: int = 0,
           prefix: str | None = None) -> None:
    """Back up configured targets as they are now (all, or narrowed like a deploy); each
    backup restores with rollback.<category> --to ID."""
    from deploy import manual
    from deploy.states import Action, RunKind
    from deploy.store import import_files

    cfg, store = config_and_store(prefix)
    found = manual.items(cfg, categories=category or (), names=name or (), ids=id_ or (),
                         subsystems=subsystem or ())
    if dry_run:
        actions.note_dry_run(actions.Row("backup", str(i.target), None, None) for i in found)
        if json_:
            emit_json({"run": None, "dry_run": True, "changes": [
                planned_record(i.category, i.target, "backup") for i in found]})
        else:
            for item in found:
                echo(f"would back up {item.target}")
            echo(f"{len(found)} target(s)")
        return
    with writing(store, wait) as sess:
        result = import_files(sess, found, kind=RunKind.BACKUP, action=Action.BACKUP)
    actions.note_result(result, tree=store.tree)
    if json_:
        emit_json({"run": result.run, "changes": change_records(result)})
        return
    if not result.changes:
        echo("nothing to back up: " + ("the tree already holds every target as it is"
                                        if found else "no configured target exists"))
        return
    echo(f"run {result.run}: backup, {len(result.changes)} target(s)")
    for a in () if Output.quiet else result.changes:
        assert a.backup is not None
        echo(f"  backed up {a.target}  (backup {a.backup.relative_to(store.tree)}, "
              f"id {a.seq})")
