"""``templates.status``: where each rendered file stands, and a CI gate (exit 3) on it."""

from __future__ import annotations

from invoke import Context

from deploy_tasks.common import READ_HELP, config_and_store, echo, emit_json, guarded
from deploy_tasks.flags import task


@task(help=READ_HELP)
@guarded
def templates_status(c: Context, json_: bool = False, prefix: str | None = None) -> None:
    """Each rendered file (templates, the framework template, parent CLAUDE.md files): up to
    date, edited by hand, outdated or absent; exit 3 when one is not up to date."""
    from deploy import context, rendered

    cfg, store = config_and_store(prefix)
    with store.reading() as index:
        rows = rendered.status(cfg, index, context.deployed_at())
    if json_:
        emit_json({"files": [{"category": r.category, "key": r.key, "target": str(r.target),
                              "state": r.state} for r in rows]})
    else:
        for r in rows:
            echo(f"{r.category:<10} {r.state:<15} {r.target}")
    rendered.check_status(rows)
