"""Template tasks: ``deploy.templates``, ``templates.history``, ``templates.adopt`` and
``rollback.templates``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from invoke import Context

from deploy.categories import TEMPLATES
from deploy_tasks import actions
from deploy_tasks.common import (
    CONFLICT_HELP,
    READ_HELP,
    WRITE_HELP,
    change_records,
    config_and_store,
    echo,
    emit_json,
    guarded,
    plan_records,
    planned_record,
    print_plan,
    print_result,
    settings,
    write_task,
    write_text,
    writing,
)
from deploy_tasks.flags import task
from deploy_tasks.rollback import rollback_help, run_rollback

if TYPE_CHECKING:
    from deploy.config import Config
    from deploy.plan import Plan
    from deploy.store import Index

T = TypeVar("T")


def showing_conflicts(build: Callable[[Index | None], T],
                      json_: bool = False) -> Callable[[Index | None], T]:
    """Wrap a plan builder so a merge conflict's hunks are shown on stdout before the error
    propagates; the error itself stays one line on stderr. With ``--json`` the hunks go
    into the one error document (``hunks``, beside ``conflicts``) that the error prints."""
    from deploy.conflict import MergeConflict

    def wrapped(index: Index | None) -> T:
        try:
            return build(index)
        except MergeConflict as err:
            if not json_:
                write_text(err.details)
                sys.stdout.flush()
            raise

    return wrapped


@task(iterable=["id_"], help={"id_": "render only this template id (repeatable)",
                              "on_conflict": CONFLICT_HELP, **WRITE_HELP})
@guarded
def deploy_templates(c: Context, id_: list[str] | None = None, on_conflict: str = "fail",
                     dry_run: bool = False, json_: bool = False, wait: int = 0,
                     prefix: str | None = None) -> None:
    """Render templates to their targets (all, or the given ids); hand edits are conflicts."""
    from deploy import conflict, context, templates
    from deploy.states import RunKind

    conflict.check_policy(on_conflict)
    cfg, store = config_and_store(prefix)
    stamp = context.deployed_at()  # one deployed_at for the whole run, however often planned
    build = showing_conflicts(
        lambda index: templates.plan(cfg, index, ids=id_, on_conflict=on_conflict, stamp=stamp),
        json_)
    write_task(store, kind=RunKind.DEPLOY, build=build,
               dry_run=dry_run, json_=json_, wait=wait)


@task(help={"id_": "the template id", **READ_HELP})
@guarded
def history(c: Context, id_: str, json_: bool = False, prefix: str | None = None) -> None:
    """Every render of one template, newest first: number, hashes, backup and run."""
    from deploy import templates

    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        records = templates.history(index, templates.check_known(id_, cfg.templates, index))
    if json_:
        emit_json({"id": id_, "renders": [
            {"n": r.n, "template_sha256": r.template_sha256, "output_sha256": r.output_sha256,
             "change": r.change, "run": r.run, "target": r.target, "created": r.created,
             "backup_id": r.backup_id,
             "backup": str(store.tree / r.backup) if r.backup else None, "state": r.state,
             "action": r.action}
            for r in records]})
        return
    if not records:
        echo(f"no renders of {id_} yet")
    for r in records:
        backup = f"backup {r.backup_id} {r.backup}" if r.backup \
            else "base of the file accepted as it was" if r.action == "adopt" \
            else "target was absent"
        echo(f"render {r.n:>3}  run {r.run:>4}  {r.created[:19]}  template "
             f"{r.template_sha256[:12]}  output {r.output_sha256[:12]}  {r.state:<8} {backup}")


ADOPT_HELP = {
    "id_": "accept only this template id's target (repeatable)",
    "dir_": "accept only this parent folder's CLAUDE.md (repeatable)",
    "framework_": "accept the installed framework template",
    **WRITE_HELP,
}


@task(iterable=["id_", "dir_"], help=ADOPT_HELP)
@guarded
def adopt(c: Context, id_: list[str] | None = None, dir_: list[str] | None = None,
          framework_: bool = False, dry_run: bool = False, json_: bool = False, wait: int = 0,
          prefix: str | None = None) -> None:
    """Accept hand edits of rendered targets as they are: a run of its own, nothing written."""
    from deploy import context, framework, templates
    from deploy.states import RunKind

    cfg, store = config_and_store(prefix)
    dirs = [framework.parent_key(cfg, folder) for folder in dir_ or ()]
    stamp = context.deployed_at()  # one deployed_at for the whole run, however often planned

    def build(index: Index | None) -> Plan:
        return templates.plan_adopt(cfg, index, ids=id_ or (), dirs=dirs, install=framework_,
                                    stamp=stamp)

    if not dry_run:
        write_task(store, kind=RunKind.ADOPT, build=build,
                   dry_run=False, json_=json_, wait=wait)
        return
    with store.reading() as index:
        plan = build(index)
    actions.note_plan(plan)
    if json_:
        emit_json({"run": None, "dry_run": True, "changes": [
            planned_record(a.category, a.target, "adopt") for a in plan.accepts]})
        return
    if not plan.accepts:
        echo("nothing to do: no rendered target differs from what this toolkit last wrote "
              "or accepted")
    for a in plan.accepts:
        echo(f"would accept {a.target} (as it is, nothing written)")
    for skip in plan.skips:
        if skip.reason != "unchanged":
            echo(f"skip    {skip.target} ({skip.reason})")


def _rollback_render(template_id: str, n: int, *, force: bool, dry_run: bool, json_: bool,
                     wait: int, prefix: str | None) -> None:
    from deploy import templates
    from deploy.states import RunKind
    from deploy.store import apply

    _cfg, store = config_and_store(prefix)
    # Plan read-only first: bad input or drift stops here without taking the lock.
    with store.reading() as index:
        plan = templates.plan_render(index, template_id, n, force=force)
    if dry_run:
        actions.note_plan(plan)
        if json_:
            emit_json({"run": None, "dry_run": True, "render": n,
                       "changes": plan_records(plan)})
        else:
            print_plan(plan)
        return
    with writing(store, wait) as sess:
        plan = templates.plan_render(sess.index, template_id, n, force=force)
        result = apply(sess, plan, kind=RunKind.ROLLBACK)
    actions.note_result(result, tree=store.tree)
    if json_:
        emit_json({"run": result.run, "render": n, "changes": change_records(result)})
    else:
        print_result(result, plan, store, kind=RunKind.ROLLBACK)


@task(iterable=["id_"], help={
    "render": "write back render N of --id (see templates.history) instead",
    **rollback_help(TEMPLATES)})
@guarded
def rollback_templates(c: Context, id_: list[str] | None = None, to: int | None = None,
                       render: int | None = None, force: bool = False, dry_run: bool = False,
                       json_: bool = False, wait: int = 0, prefix: str | None = None) -> None:
    """Undo the latest not-yet-undone run's template changes, or restore one render."""
    from deploy import templates
    from deploy.errors import ConfigError

    def known(cfg: Config, template_id: str) -> str:
        with config_and_store(prefix)[1].reading() as index:
            return templates.check_known(template_id, cfg.templates, index)

    ids = list(id_ or ())
    if render is not None:
        if len(ids) != 1 or to is not None:
            raise ConfigError("--render needs exactly one --id and no --to")
        # DeployTask made --render a whole number in range (flags.RANGES).
        _rollback_render(known(settings(prefix), ids[0]), render, force=force,
                         dry_run=dry_run, json_=json_, wait=wait, prefix=prefix)
        return
    run_rollback((TEMPLATES.name,), keys=ids, to=to, run=None, force=force, dry_run=dry_run,
                 json_=json_, wait=wait, prefix=prefix,
                 key_check=known)
