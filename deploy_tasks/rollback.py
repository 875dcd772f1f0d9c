"""The ``rollback`` collection: undo the latest not-yet-undone run's changes, per category."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from invoke import Context

from deploy.categories import NAMES, SCRIPTS, Category
from deploy_tasks.common import (
    WRITE_HELP,
    Output,
    change_records,
    config_and_store,
    echo,
    emit_json,
    guarded,
    plan_records,
    print_plan,
    print_result,
    writing,
)
from deploy_tasks.flags import task

if TYPE_CHECKING:
    from deploy.config import Config
    from deploy.rollback import RollbackPlan
    from deploy.store import Index

# The flags every rollback takes; a category's rollback can also restore one backup (--to).
UNDO_HELP = {
    "force": "restore even if the target changed since the run wrote it (it is backed up first)",
    **WRITE_HELP,
}
ROLLBACK_HELP = {
    "to": "restore this backup id (see backups.list) instead of stepping back a run",
    **UNDO_HELP,
}


def rollback_help(category: Category) -> dict[str, str]:
    """A category's rollback flags: its narrowing flag, as the category table describes it
    (``--name``, ``--subsystem``, ``--id``, ``--dir``; the framework has none), and
    ROLLBACK_HELP's."""
    narrowing = {category.flag: category.help} if category.flag else {}
    return {**narrowing, **ROLLBACK_HELP}


def run_rollback(categories: tuple[str, ...], *, keys: list[str], to: int | None, run: int | None,
                 force: bool, dry_run: bool, json_: bool, wait: int, prefix: str | None,
                 key_check: Callable[[Config, str], str] | None = None,
                 commit: str | None = None) -> None:
    from deploy import rollback
    from deploy.plan import Plan
    from deploy.states import RunKind
    from deploy.store import apply
    from deploy_tasks import actions

    cfg, store = config_and_store(prefix)
    if key_check is not None:
        keys = [key_check(cfg, k) for k in keys]
    integrity = cfg.backup.integrity_checking

    def build(index: Index | None) -> RollbackPlan:
        if index is None:
            if to is not None or run is not None or commit is not None:
                from deploy.errors import ConfigError
                raise ConfigError(f"{store.tree}: no backup index yet; nothing to restore")
            return rollback.RollbackPlan(Plan(categories=categories), None, (), ())
        if to is not None:
            return rollback.plan_backup(store, index, categories, to, keys=keys, force=force,
                                        integrity=integrity)
        return rollback.plan_run(store, index, categories, keys=keys, run=run, force=force,
                                 integrity=integrity, commit=commit)

    what = ", ".join(categories)
    store.check_index_kept()  # before a session would create an empty one
    if dry_run:
        with store.reading() as index:
            rp = build(index)
        actions.note_plan(rp.plan)
        if json_:
            emit_json({"run": None, "dry_run": True, "undoes": rp.run,
                       "changes": plan_records(rp.plan)})
        elif rp.run is None and not rp.plan.changes:
            echo(f"nothing to roll back in {what}")
        else:
            if rp.run is not None:
                echo(f"would undo run {rp.run}")
            print_plan(rp.plan)
        return
    with writing(store, wait) as sess:
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
            echo(f"nothing to roll back in {what}")
        return
    if os.environ.get("DEPLOY_RESULT_FILE"):  # on a host, for --all-or-none
        from deploy_tasks.remote.hostenv import record_result

        record_result(result.run)
    actions.note_result(result, tree=store.tree, undoes=rp.run)
    if json_:
        pruned = {"auto_prune": sess.auto_pruned} if sess.auto_pruned is not None else {}
        emit_json({"run": result.run, "undoes": rp.run,
                   "changes": change_records(result), **pruned})
    else:
        if rp.run is not None and not Output.quiet:
            echo(f"undid run {rp.run}")
        print_result(result, rp.plan, store, kind=RunKind.ROLLBACK)


@task(iterable=["name"], help=rollback_help(SCRIPTS))
@guarded
def scripts(c: Context, name: list[str] | None = None, to: int | None = None,
            force: bool = False, dry_run: bool = False, json_: bool = False, wait: int = 0,
            prefix: str | None = None) -> None:
    """Undo the latest not-yet-undone run's script changes (run again to step further back)."""
    from deploy.names import check_name

    run_rollback((SCRIPTS.name,), keys=list(name or ()), to=to, run=None, force=force,
                 dry_run=dry_run, json_=json_, wait=wait, prefix=prefix,
                 key_check=lambda _cfg, k: check_name(k, "script name"))


@task(help={"run": "the run to undo (default: the latest not undone; may be a rollback)",
            "commit": "undo the latest not-undone run made from this commit (a prefix of 4 or "
                      "more hex digits is enough)",
            **UNDO_HELP})
@guarded
def release(c: Context, run: int | None = None, commit: str | None = None, force: bool = False,
            dry_run: bool = False, json_: bool = False, wait: int = 0,
            prefix: str | None = None) -> None:
    """Undo every change of one run, across categories, newest change first."""
    from deploy.errors import ConfigError
    from deploy.rollback import check_commit

    if commit is not None:
        if run is not None:
            raise ConfigError("--commit and --run both name a run to undo; give one of them")
        commit = check_commit(commit)
    run_rollback(NAMES, keys=[], to=None, run=run, force=force, dry_run=dry_run,
                 json_=json_, wait=wait, prefix=prefix, commit=commit)
