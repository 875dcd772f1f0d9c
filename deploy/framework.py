"""The framework template: installed as is, then rendered into each parent folder.

``install_to`` gets the template's bytes unrendered (category ``framework``);
each folder of ``parents`` gets it rendered, with ``parent_dir`` set, as
``CLAUDE.md`` (category ``parents``, keyed by the folder). Both are rendered
files, so both go through the conflict check.

After a framework install only the newest ``framework_keep`` framework backups
stay, chosen by sequence number: the original sorted by mtime, which ``copy2``
had copied from the source, and deleted the newest backup.

All parent backups share one folder (``parent_directory_manager/``) and one
file name stem (``CLAUDE.md_...``); the original restored whichever file in it
looked newest, which could be another folder's. Restores here go through the
index, row by row, so each folder gets its own file back.

Each parent's render also sees ``CLAUDE_MD_VERSION``, ``<FRAMEWORK_VERSION>-<NNN>``,
the original's per-folder serial; :func:`deploy.rendercache.render_versioned` derives
it from our previous render of that folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from deploy import conflict, context, render, rendercache, store
from deploy.categories import FRAMEWORK, PARENTS
from deploy.codes import Codes
from deploy.config import BackupSettings, Config
from deploy.errors import ConfigError
from deploy.plan import Plan, Skip
from deploy.store import ChangeRow, Index, Session

CATEGORY = FRAMEWORK.name
KEY = "framework"
PARENT_FILE = "CLAUDE.md"


def configured(cfg: Config) -> bool:
    """Whether there is a framework template to deploy: ``framework.template`` is set (a
    missing file is then an error, exit 2, like a missing ``scripts.source``), or the default
    template exists (``invoke deploy`` skips it, visibly, otherwise)."""
    if cfg.framework_template is None:
        return False
    return cfg.framework_template_set or cfg.framework_template.is_file()


def rendered(cfg: Config, index: Index | None, *, stamp: str | None = None,
             install: bool = True, parents: Iterable[Path] | None = None
             ) -> list[conflict.Rendered]:
    """The framework template as installed (``install``) and rendered into ``parents``
    (configured parent folders; None: all of them), in memory."""
    if cfg.framework_template is None or cfg.framework_install_to is None:
        raise ConfigError(f"{cfg.path}: no framework template configured")
    template = render.read_template(cfg.framework_template, "framework template")
    items = [conflict.Rendered(CATEGORY, KEY, cfg.framework_install_to, template.data,
                               template.sha256)] if install else []
    folders = list(cfg.parents if parents is None else parents)
    if folders:
        variables = context.variables(cfg, stamp or context.deployed_at())
        codes = Codes(index.renders.code if index is not None else None)
        items.extend(rendercache.render_target(
            index, PARENTS.name, str(parent), parent / PARENT_FILE, template,
            {**variables, "parent_dir": str(parent)}, codes, versioned=True)
            for parent in folders)
    return items


def plan(cfg: Config, index: Index | None, *, on_conflict: str = "fail",
         stamp: str | None = None) -> Plan:
    """Plan installing the framework template and rendering it into every parent folder."""
    conflict.check_policy(on_conflict)
    return conflict.resolve(index, rendered(cfg, index, stamp=stamp), on_conflict,
                            (CATEGORY, PARENTS.name))


def plan_if_configured(cfg: Config, index: Index | None, *, on_conflict: str = "fail",
                       stamp: str | None = None) -> Plan:
    """For ``invoke deploy``: the framework's plan, or a visible skip without the default
    template (a configured one that is missing stops the plan, exit 2)."""
    if configured(cfg):
        return plan(cfg, index, on_conflict=on_conflict, stamp=stamp)
    assert cfg.framework_install_to is not None
    template = cfg.framework_template
    return Plan((), (Skip(CATEGORY, KEY, cfg.framework_install_to,
                          f"no framework template at {template}; set framework.template "
                          'to yours, or to "bundled" for the one this toolkit ships'),), ())


def rotation(rows: Iterable[ChangeRow], keep: int) -> list[ChangeRow]:
    """Framework backups beyond the newest ``keep``, by sequence number, oldest first.

    Like retention, the newest backup always stays; unlike ``backups.prune`` age
    plays no part: this is the original's "keep the 2 most recent" rotation.
    """
    framework = sorted((r for r in rows if r.category == CATEGORY),
                       key=lambda r: r.seq, reverse=True)
    return sorted(framework[max(keep, 1):], key=lambda r: r.seq)


def parent_key(cfg: Config, folder: str) -> str:
    """The index key of a user-given ``--dir``: it must be a configured parent once resolved."""
    if "\x00" in folder or not folder:
        raise ConfigError(f"--dir {folder!r} is not a folder name")
    given = Path(folder).expanduser()
    resolved = given.resolve()
    candidates = {resolved}
    if cfg.prefix is not None and not str(resolved).startswith(str(cfg.prefix) + "/"):
        # Under --prefix the configured parents are staged; accept the unstaged name too.
        candidates.add(cfg.prefix / resolved.relative_to(resolved.anchor))
    for parent in cfg.parents:
        if parent.resolve() in candidates or parent in candidates:
            return str(parent)
    known = ", ".join(str(p) for p in cfg.parents) or "none"
    raise ConfigError(f"--dir {folder}: {resolved} is not one of the configured parent "
                      f"folders ({known})")


def rotate(session: Session, backup: BackupSettings) -> list[ChangeRow]:
    """Delete the framework backups beyond the newest ``framework_keep``; returns what went.

    What a retention promise needs stays, outside the count (``retention.PROMISES``): a
    kept run's backups, the latest not-undone framework run's, and those the promised
    step-back rollbacks of the framework need (after a rollback, the newest two backups
    are no longer the two the next two rollbacks need).
    """
    from deploy import retention

    doomed = rotation(session.index.changes.backups(category=CATEGORY), backup.framework_keep)
    if doomed:
        rows = session.index.changes.for_retention(CATEGORY)
        promised = {v.id for v in retention.verdicts(rows, session.index.runs.newest(), backup)
                    if v.rule in retention.PROMISES}
        doomed = [r for r in doomed if r.seq not in promised]
    return store.delete_backups(session, doomed)
