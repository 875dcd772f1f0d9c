"""The ``deploy`` collection's default task: one release over every category."""

from __future__ import annotations

from typing import Any

from invoke import task

from deploy_tasks.common import WRITE_HELP, guarded, settings, write_task

CONFLICT_HELP = "when a rendered target was edited by hand: fail (default), keep, overwrite, merge"


@task(default=True, help={"on_conflict": CONFLICT_HELP, **WRITE_HELP})
@guarded
def release(c: Any, on_conflict: str = "fail", dry_run: bool = False, json_: bool = False,
            wait: int = 0, prefix: str | None = None) -> None:
    """One run over every configured category (scripts, framework, templates); all or nothing."""
    from deploy import conflict, context
    from deploy import release as rel
    from deploy_tasks.framework import rotating
    from deploy_tasks.templates import showing_conflicts

    conflict.check_policy(on_conflict)
    cfg = settings(prefix)
    stamp = context.deployed_at()  # one deployed_at for the whole run, however often planned
    build = showing_conflicts(
        lambda index: rel.plan(cfg, index, on_conflict=on_conflict, stamp=stamp), json_)
    write_task(cfg, kind="deploy", title="deploy", build=build, dry_run=dry_run, json_=json_,
               wait=wait, after=rotating(cfg, json_))
