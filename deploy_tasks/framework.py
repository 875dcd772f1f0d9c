"""Framework tasks: ``deploy.framework``, ``rollback.framework`` and ``rollback.parents``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from invoke import Context

from deploy.categories import FRAMEWORK, PARENTS
from deploy_tasks.common import (
    CONFLICT_HELP,
    WRITE_HELP,
    Record,
    config_and_store,
    echo,
    guarded,
    write_task,
)
from deploy_tasks.flags import task
from deploy_tasks.rollback import rollback_help, run_rollback
from deploy_tasks.templates import showing_conflicts

if TYPE_CHECKING:
    from deploy.config import Config
    from deploy.plan import Plan
    from deploy.store import Session


def rotating(cfg: Config, json_: bool) -> Callable[[Session, Plan], Record]:
    """The ``after`` hook of a run that may install the framework: keep the newest
    ``framework_keep`` framework backups (by sequence number) under the same lock."""
    from deploy import framework

    def after(sess: Session, _plan: Plan) -> Record:
        doomed = framework.rotate(sess, cfg.backup)
        paths = [str(sess.store.backup_path(row)) for row in doomed]
        if not json_:
            for path in paths:
                echo(f"rotated out framework backup {path}")
        return {"rotated": paths}

    return after


@task(help={"on_conflict": CONFLICT_HELP, **WRITE_HELP})
@guarded
def deploy_framework(c: Context, on_conflict: str = "fail", dry_run: bool = False,
                     json_: bool = False, wait: int = 0, prefix: str | None = None) -> None:
    """Install the framework template as is, then render it into each parent folder."""
    from deploy import conflict, context, framework
    from deploy.states import RunKind

    conflict.check_policy(on_conflict)
    cfg, store = config_and_store(prefix)
    stamp = context.deployed_at()  # one deployed_at for the whole run, however often planned
    build = showing_conflicts(
        lambda index: framework.plan(cfg, index, on_conflict=on_conflict, stamp=stamp), json_)
    write_task(store, kind=RunKind.DEPLOY, build=build,
               dry_run=dry_run, json_=json_, wait=wait, after=rotating(cfg, json_))


@task(help=rollback_help(FRAMEWORK))
@guarded
def rollback_framework(c: Context, to: int | None = None, force: bool = False,
                       dry_run: bool = False, json_: bool = False, wait: int = 0,
                       prefix: str | None = None) -> None:
    """Undo the latest not-yet-undone framework install (run again to step further back)."""
    run_rollback((FRAMEWORK.name,), keys=[], to=to, run=None, force=force, dry_run=dry_run,
                 json_=json_, wait=wait, prefix=prefix)


@task(iterable=["dir_"], help=rollback_help(PARENTS))
@guarded
def rollback_parents(c: Context, dir_: list[str] | None = None, to: int | None = None,
                     force: bool = False, dry_run: bool = False, json_: bool = False,
                     wait: int = 0, prefix: str | None = None) -> None:
    """Undo the latest not-yet-undone run's parent CLAUDE.md changes, each from its own backup."""
    from deploy import framework

    run_rollback((PARENTS.name,), keys=list(dir_ or ()), to=to, run=None, force=force,
                 dry_run=dry_run, json_=json_, wait=wait, prefix=prefix,
                 key_check=framework.parent_key)
