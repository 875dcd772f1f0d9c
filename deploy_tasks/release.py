"""The ``deploy`` collection's default task: one release over every category."""

from __future__ import annotations

from invoke import Context

from deploy_tasks.common import CONFLICT_HELP, WRITE_HELP, config_and_store, guarded, write_task
from deploy_tasks.flags import task
from deploy_tasks.framework import rotating
from deploy_tasks.templates import showing_conflicts


@task(default=True, help={"on_conflict": CONFLICT_HELP, **WRITE_HELP})
@guarded
def release(c: Context, on_conflict: str = "fail", dry_run: bool = False, json_: bool = False,
            wait: int = 0, prefix: str | None = None) -> None:
    """One run over every configured category (scripts, framework, templates); all or nothing."""
    from deploy import conflict, context
    from deploy import release as rel
    from deploy.states import RunKind

    conflict.check_policy(on_conflict)
    cfg, store = config_and_store(prefix)
    stamp = context.deployed_at()  # one deployed_at for the whole run, however often planned
    build = showing_conflicts(
        lambda index: rel.plan(cfg, index, on_conflict=on_conflict, stamp=stamp), json_)
    write_task(store, kind=RunKind.DEPLOY, build=build, dry_run=dry_run,
               json_=json_, wait=wait, after=rotating(cfg, json_))
