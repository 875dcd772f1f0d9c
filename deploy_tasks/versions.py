"""The ``versions`` collection (show, bump, bulk, check) and ``rollback.versions``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context

from deploy.categories import VERSIONS
from deploy_tasks.common import (
    READ_HELP,
    WRITE_HELP,
    config_and_store,
    echo,
    emit_json,
    guarded,
    settings,
    write_task,
)
from deploy_tasks.flags import task
from deploy_tasks.rollback import rollback_help, run_rollback

if TYPE_CHECKING:
    from deploy.config import Config
    from deploy.versions import Layout

DOWNGRADE_HELP = "allow setting a version lower than the current one"


def layout(cfg: Config) -> Layout:
    """Where the config's version files are: ``versions.dir`` and ``versions.files``."""
    from deploy import versions

    return versions.layout(cfg.versions_dir, cfg.versions_files)


@task(hosts=False, help=READ_HELP)
@guarded
def show(c: Context, json_: bool = False, prefix: str | None = None) -> None:
    """Each subsystem and its version (<NAME>_VERSION files, versions.files), and VERSION."""
    from deploy import versions

    cfg = settings(prefix)
    found = versions.read_all(layout(cfg))
    framework = versions.framework_version(cfg.versions_dir)
    table = dict(cfg.versions_files)
    if json_:
        emit_json({"dir": str(cfg.versions_dir),
                   "versions": {k: f.version.text for k, f in found.items()},
                   "framework_version": framework,
                   "files": {k: str(f.path) for k, f in found.items()}})
        return
    if not found:
        echo(f"no <NAME>_VERSION files in {cfg.versions_dir}")
    width = max((len(k) for k in found), default=0)
    column = max((len(f.version.text) for f in found.values()), default=0)
    base = cfg.path.resolve().parent
    for key, vfile in found.items():
        # A versions.files entry also shows its file, from the config's folder.
        where = f"  {vfile.path.relative_to(base)}" if key in table else ""
        echo(f"{key:<{width}}  {vfile.version.text:<{column}}{where}".rstrip())
    if framework is not None:
        echo(f"framework_version (VERSION): {framework}")


@task(hosts=False, text_flags=("to",), help={
    "subsystem": "the subsystem, e.g. memory (its file is MEMORY_VERSION), one of "
                 "[tool.deploy.versions.files], or version (the release VERSION file)",
            "to": "set this version (serial or PEP 440); a shorter serial is zero-padded to "
                  "the file's width; default: the next one",
            "allow_downgrade": DOWNGRADE_HELP,
            "create": "create the version file when the subsystem has none (needs --to)",
            **WRITE_HELP})
@guarded
def bump(c: Context, subsystem: str, to: str | None = None, allow_downgrade: bool = False,
         create: bool = False, dry_run: bool = False, json_: bool = False, wait: int = 0,
         prefix: str | None = None) -> None:
    """Set one subsystem's version; without --to, the next serial, same width (009 -> 010)."""
    from deploy import versions
    from deploy.states import RunKind
    from deploy.versions.values import check_digits

    if to is not None:
        check_digits(to, "--to")  # named by the flag, not echoed: it may be 5,000 digits
    cfg, store = config_and_store(prefix)
    write_task(store, kind=RunKind.BUMP,
               build=lambda _index: versions.plan_bump(
                   layout(cfg), subsystem, to, allow_downgrade=allow_downgrade,
                   create=create),
               dry_run=dry_run, json_=json_, wait=wait)


@task(hosts=False, iterable=["set_"], placeholders={"set": "NAME=VERSION"},
      help={"set_": "NAME=VERSION (repeatable)", "allow_downgrade": DOWNGRADE_HELP, **WRITE_HELP})
@guarded
def bulk(c: Context, set_: list[str] | None = None, allow_downgrade: bool = False,
         dry_run: bool = False, json_: bool = False, wait: int = 0,
         prefix: str | None = None) -> None:
    """Set several versions at once as one run: every item is checked first; all or nothing."""
    from deploy import versions
    from deploy.states import RunKind
    from deploy.versions.values import check_digits

    cfg, store = config_and_store(prefix)
    pairs = [versions.parse_setting(text) for text in set_ or ()]
    for name, version in pairs:
        check_digits(version, f"--set {name}")
    write_task(store, kind=RunKind.BUMP,
               build=lambda _index: versions.plan_bulk(layout(cfg), pairs,
                                                       allow_downgrade=allow_downgrade),
               dry_run=dry_run, json_=json_, wait=wait)


@task(hosts=False, help=READ_HELP)
@guarded
def check(c: Context, json_: bool = False, prefix: str | None = None) -> None:
    """Compare the versions with [tool.deploy.versions.requires]; exit 3 when one is not met."""
    from deploy import versions

    cfg = settings(prefix)
    results = versions.check(cfg.requires, versions.found(layout(cfg), cfg.requires))
    if json_:
        emit_json({"ok": all(r.met for r in results), "requirements": [
            {"subsystem": r.subsystem, "requires": r.spec, "version": r.version,
             "status": r.status, "met": r.met} for r in results]})
    else:
        if not results:
            echo("no requirements in [tool.deploy.versions.requires]")
        width = max((len(r.subsystem) for r in results), default=0)
        for r in results:
            echo(f"{r.subsystem:<{width}}  {r.version or '-':<10} {r.spec:<14} {r.status}")
    error = versions.unmet(layout(cfg), results)
    if error is not None:
        raise error


@task(hosts=False, iterable=["subsystem"], help=rollback_help(VERSIONS))
@guarded
def rollback_versions(c: Context, subsystem: list[str] | None = None, to: int | None = None,
                      force: bool = False, dry_run: bool = False, json_: bool = False,
                      wait: int = 0, prefix: str | None = None) -> None:
    """Undo the latest not-yet-undone run's version changes (run again to step further back)."""
    from deploy.versions import subsystem_key

    run_rollback((VERSIONS.name,), keys=list(subsystem or ()), to=to, run=None, force=force,
                 dry_run=dry_run, json_=json_, wait=wait, prefix=prefix,
                 key_check=lambda _cfg, k: subsystem_key(k))
