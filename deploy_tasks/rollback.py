"""The ``rollback`` collection: undo the latest not-yet-undone run's changes, per category."""

from __future__ import annotations

from typing import Any

from invoke import task

from deploy_tasks.common import (
    WRITE_HELP,
    change_records,
    emit_json,
    guarded,
    print_plan,
    print_result,
    settings,
    step_summary,
    writing,
)

ROLLBACK_HELP = {
    "to": "restore this backup id (see backups.list) instead of stepping back a run",
    "force": "restore even if the target changed since the run wrote it (it is backed up first)",
    **WRITE_HELP,
}


def run_rollback(categories: tuple[str, ...], *, keys: list[str], to: int | None, run: int | None,
                 force: bool, dry_run: bool, json_: bool, wait: int, prefix: str | None,
                 key_check: Any = None) -> None:
    from deploy import rollback
    from deploy.states import RunKind
    from deploy.store import Store, apply

    cfg = settings(prefix)
    if key_check is not None:
        keys = [key_check(cfg, k) for k in keys]
    store = Store(cfg.state_dir)
    integrity = cfg.backup.integrity_checking

    def build(index: Any) -> rollback.RollbackPlan:
        if index is None:
            if to is not None or run is not None:
                from deploy.errors import ConfigError
                raise ConfigError(f"{store.tree}: no backup index yet; nothing to restore")
            return rollback.RollbackPlan(rollback.Plan(categories=categories), None, (), ())
        if to is not None:
            return rollback.plan_backup(store, index, categories, to, keys=keys, force=force,
                                        integrity=integrity)
        return rollback.plan_run(store, index, categories, keys=keys, run=run, force=force,
                                 integrity=integrity)

    what = ", ".join(categories)
    if dry_run:
        with store.reading() as index:
            rp = build(index)
        if json_:
            emit_json({"run": None, "dry_run": True, "undoes": rp.run, "changes": [
                {"category": c.category, "target": str(c.target), "action": c.action,
                 "backup": None} for c in rp.plan.changes]})
        elif rp.run is None and not rp.plan.changes:
            print(f"nothing to roll back in {what}")
        else:
            if rp.run is not None:
                print(f"would undo run {rp.run}")
            print_plan(rp.plan)
        return
    with writing(cfg, wait) as sess:
        rp = build(sess.index)
        if rp.run is None and not rp.plan.changes:
            result = None
        else:
            result = apply(sess, rp.plan, kind=RunKind.ROLLBACK, undoes=rp.run,
                           record_empty=True,
                           on_done=lambda idx, new_run, _seqs: rollback.finish(idx, new_run, rp))
    if result is None:
        if json_:
            emit_json({"run": None, "undoes": None, "changes": []})
        else:
            print(f"nothing to roll back in {what}")
        return
    step_summary(f"rollback ({what})", result)
    if json_:
        emit_json({"run": result.run, "undoes": rp.run,
                   "changes": change_records(result)})
    else:
        if rp.run is not None:
            print(f"undid run {rp.run}")
        print_result(result, rp.plan, store, kind="rollback")


@task(iterable=["name"], help={"name": "only this script (repeatable)", **ROLLBACK_HELP})
@guarded
def scripts(c: Any, name: list[str] | None = None, to: int | None = None, force: bool = False,
            dry_run: bool = False, json_: bool = False, wait: int = 0,
            prefix: str | None = None) -> None:
    """Undo the latest not-yet-undone run's script changes (run again to step further back)."""
    from deploy.names import check_name

    run_rollback(("scripts",), keys=list(name or ()), to=to, run=None, force=force,
                 dry_run=dry_run, json_=json_, wait=wait, prefix=prefix,
                 key_check=lambda _cfg, k: check_name(k, "script name"))


@task(help={"run": "the run to undo (default: the latest not undone; may be a rollback)",
            **{k: v for k, v in ROLLBACK_HELP.items() if k != "to"}})
@guarded
def release(c: Any, run: int | None = None, force: bool = False, dry_run: bool = False,
            json_: bool = False, wait: int = 0, prefix: str | None = None) -> None:
    """Undo every change of one run, across categories, newest change first."""
    from deploy.categories import NAMES

    run_rollback(NAMES, keys=[], to=None, run=run, force=force, dry_run=dry_run,
                 json_=json_, wait=wait, prefix=prefix)
