"""Manual backups (the guide's ``_create_backup(path)``): the configured targets as they are
now, copied into the tree as a run of their own, so each restores with ``--to ID``.

Nothing is written to a target; the copies follow the store's migration order (rows,
copies, commit) and a target whose current bytes the tree already holds as a manual
backup is not copied again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from deploy import framework, scripts, templates, versions
from deploy.categories import (
    FRAMEWORK,
    NAMES,
    PARENTS,
    RELEASE_KEY,
    SCRIPTS,
    TEMPLATES,
    VERSIONS,
)
from deploy.config import Config
from deploy.errors import ConfigError
from deploy.store.migrate import Item


def items(cfg: Config, *, categories: Iterable[str] = (), names: Iterable[str] = (),
          ids: Iterable[str] = (), subsystems: Iterable[str] = (),
          when: datetime | None = None) -> list[Item]:
    """What ``backups.create`` copies: every configured target that exists, of the given
    categories (all when none), narrowed by names, template ids and subsystems like a
    deploy; (category, key, the file, the target it is, the time)."""
    when = when or datetime.now()
    names, ids, subsystems = list(names), list(ids), list(subsystems)
    # A narrowing flag picks its category, as on a deploy; none: every category.
    narrowed = {SCRIPTS.name} if names else set()
    narrowed |= {TEMPLATES.name} if ids else set()
    narrowed |= {VERSIONS.name} if subsystems else set()
    wanted = set(categories) or narrowed or set(NAMES)
    unknown = wanted - set(NAMES)
    if unknown:
        raise ConfigError(f"--category {sorted(unknown)[0]!r}: one of {', '.join(NAMES)}")
    found: list[tuple[str, str, Path]] = []
    if SCRIPTS.name in wanted:
        available = scripts.scan(cfg.scripts_source, cfg.scripts_include,
                                 cfg.scripts_exclude).scripts
        chosen = scripts.select(available, names or None, cfg.scripts_source)
        found += [(SCRIPTS.name, name, cfg.scripts_target / name) for name in chosen]
    where = versions.layout(cfg.versions_dir, cfg.versions_files)
    if VERSIONS.name in wanted and (subsystems or cfg.versions_dir.is_dir() or where.files):
        keys = [versions.subsystem_key(s) for s in subsystems] or \
            [*versions.subsystems(where), RELEASE_KEY]
        found += [(VERSIONS.name, key, versions.version_path(where, key)) for key in keys]
    if TEMPLATES.name in wanted:
        found += [(TEMPLATES.name, spec.id, spec.target)
                  for spec in templates.select(cfg.templates, ids or None)]
    if FRAMEWORK.name in wanted and cfg.framework_install_to is not None:
        found.append((FRAMEWORK.name, framework.KEY, cfg.framework_install_to))
    if PARENTS.name in wanted:
        found += [(PARENTS.name, str(parent), parent / framework.PARENT_FILE)
                  for parent in cfg.parents]
    return [Item(category=category, key=key, path=target, target=target, when=when)
            for category, key, target in found if target.is_file() and not target.is_symlink()]
