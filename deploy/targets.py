"""Which configured target each backup name belongs to, for ``backups.reindex``.

The store reads the tree's backup names back (``deploy.store.scan``) but never the config;
this module answers, from the config, for each (category, name) a name carries:

- scripts: ``<scripts.target>/<name>``, mode 0755 (what ``deploy.scripts`` gives), for any
  name that passes the checks of a script name (a script since removed from
  ``scripts.source`` was still deployed there);
- versions: ``<versions.dir>/<NAME>_VERSION`` keyed by the subsystem ``name``, or that
  subsystem's ``versions.files`` path; ``VERSION``: the release file of ``versions.dir``;
- templates: the target of the configured template of that id;
- framework: ``framework.install_to``;
- parents: ``<parent>/CLAUDE.md`` of every configured parent folder. The name says only
  ``CLAUDE.md``, so with two parents or more there are several candidates, and the
  store reports the backup as one it cannot place.

Names the config knows nothing of get no entry: the store reports them.
"""

from __future__ import annotations

from collections.abc import Iterable

from deploy.categories import FRAMEWORK, PARENTS, RELEASE_KEY, SCRIPTS, TEMPLATES, VERSIONS
from deploy.config import Config
from deploy.errors import BadName
from deploy.framework import KEY as FRAMEWORK_KEY
from deploy.framework import PARENT_FILE
from deploy.names import check_name
from deploy.scripts import SCRIPT_MODE
from deploy.store import Target, Targets
from deploy.versions.files import FILE_NAME, FRAMEWORK_FILE, subsystem_key


def _script(cfg: Config, name: str) -> list[Target]:
    try:
        check_name(name, "script name")
    except BadName:
        return []
    return [Target(name, cfg.scripts_target / name, SCRIPT_MODE)]


def _version(cfg: Config, name: str) -> list[Target]:
    """A version file's backup is named after its subsystem (``version_file_name``): the
    release ``VERSION``, a ``versions.files`` entry, or ``<NAME>_VERSION`` of the folder."""
    if name == FRAMEWORK_FILE:
        return [Target(RELEASE_KEY, cfg.versions_dir / FRAMEWORK_FILE)]
    match = FILE_NAME.match(name)
    if match is None:
        return []
    try:
        key = subsystem_key(match.group(1))
    except BadName:
        return []
    table = dict(cfg.versions_files)
    return [Target(key, table.get(key, cfg.versions_dir / name))]


def targets(cfg: Config, names: Iterable[tuple[str, str]]) -> Targets:
    """The configured targets for each (category, name) of ``names``."""
    templates = {t.id: t.target for t in cfg.templates}
    found: dict[tuple[str, str], list[Target]] = {}
    for category, name in names:
        owners: list[Target] = []
        if category == SCRIPTS.name:
            owners = _script(cfg, name)
        elif category == VERSIONS.name:
            owners = _version(cfg, name)
        elif category == TEMPLATES.name and name in templates:
            owners = [Target(name, templates[name])]
        elif category == FRAMEWORK.name and cfg.framework_install_to is not None:
            owners = [Target(FRAMEWORK_KEY, cfg.framework_install_to)]
        elif category == PARENTS.name and name == PARENT_FILE:
            owners = [Target(str(parent), parent / PARENT_FILE) for parent in cfg.parents]
        if owners:
            found[(category, name)] = owners
    return found
