"""``deploy.scripts``, ``scripts.status`` and ``rollback.scripts`` live in their collections;
this module holds the scripts-specific task bodies."""

from __future__ import annotations

from invoke import Context

from deploy_tasks.common import (
    READ_HELP,
    WRITE_HELP,
    config_and_store,
    echo,
    emit_json,
    guarded,
    write_task,
)
from deploy_tasks.flags import task


@task(iterable=["name"], help={
    "name": "deploy only this script (repeatable)",
    "on_conflict": "accepted like every deploy task; scripts never conflict: a differing "
                   "target is backed up and replaced (see scripts.status for drift)",
    **WRITE_HELP})
@guarded
def deploy_scripts(c: Context, name: list[str] | None = None, on_conflict: str = "fail",
                   dry_run: bool = False, json_: bool = False, wait: int = 0,
                   prefix: str | None = None) -> None:
    """Deploy scripts into the scripts target, mode 0755, backing up each target first."""
    from deploy import conflict, scripts
    from deploy.states import RunKind

    conflict.check_policy(on_conflict)
    cfg, store = config_and_store(prefix)
    write_task(store, kind=RunKind.DEPLOY,
               build=lambda _index: scripts.plan(cfg.scripts_source, cfg.scripts_target, name,
                                                 include=cfg.scripts_include,
                                                 exclude=cfg.scripts_exclude),
               dry_run=dry_run, json_=json_, wait=wait)


@task(help={"verify": "run each deployed script's --version (5 s timeout)", **READ_HELP})
@guarded
def status(c: Context, verify: bool = False, json_: bool = False,
           prefix: str | None = None) -> None:
    """Each script: synchronized, outdated, drifted, not deployed or source missing."""
    from deploy import scripts

    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        rows = scripts.status(cfg.scripts_source, cfg.scripts_target, index, verify=verify,
                              include=cfg.scripts_include, exclude=cfg.scripts_exclude)
    if json_:
        emit_json({"scripts": [{"name": r.name, "state": r.state, "target": str(r.target),
                                "source": str(r.source) if r.source else None,
                                "version": r.version} for r in rows]})
    else:
        width = max((len(r.name) for r in rows), default=4)
        for r in rows:
            version = f"  {r.version}" if r.version is not None else ""
            echo(f"{r.name:<{width}}  {r.state:<14} {r.target}{version}")
    scripts.check_status(rows)  # exit 3 when one is not up to date, 1 when --verify failed
