"""Bump plans: one subsystem, or several at once, all or nothing.

A bulk bump checks every item before the first write and is applied by the
store as one run (bump-my-version edits files one by one and can leave a
half-bumped tree: its issue #381).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from deploy import fsio
from deploy.categories import VERSIONS
from deploy.errors import ConfigError
from deploy.plan import Change, Plan, Skip
from deploy.versions.files import (
    Layout,
    VersionFile,
    read,
    subsystem_key,
    subsystems,
    version_path,
)
from deploy.versions.values import Version, next_version, parse

CATEGORY = VERSIONS.name
NEW_MODE = 0o644


def _target(current: VersionFile, to: str | None, allow_downgrade: bool) -> Version:
    if to is None:
        return next_version(current.version)
    wanted = parse(to, f"{current.path}: --to {to!r}")
    if wanted.serial and current.version.serial and len(wanted.text) < len(current.version.text):
        # Keep the file's width: `--to 11` over `010` writes `011`.
        wanted = parse(wanted.text.zfill(len(current.version.text)))
    if wanted.value < current.version.value and not allow_downgrade:
        raise ConfigError(f"{current.path}: {wanted} is lower than the current "
                          f"{current.version}; pass --allow-downgrade to go back")
    return wanted


def _change(current: VersionFile, wanted: Version) -> Change | Skip:
    if wanted.value == current.version.value:
        # The same version (even written differently) is a no-op, not a rewrite.
        return Skip(CATEGORY, current.subsystem, current.path, "unchanged")
    data = current.render(wanted)
    return Change(category=CATEGORY, key=current.subsystem, target=current.path,
                  old=current.state, new=data, new_sha256=fsio.sha256_bytes(data),
                  new_size=len(data), mode=current.state.mode or NEW_MODE,
                  note=f"{current.version} -> {wanted}")


def _check_table(where: Layout | Path) -> None:
    """A ``versions.files`` table is checked against the folder's files before a bump: one
    file, one subsystem (:func:`deploy.versions.files.subsystems` raises otherwise)."""
    if isinstance(where, Layout) and where.files:
        subsystems(where)


def _plan(items: Iterable[Change | Skip]) -> Plan:
    changes = tuple(i for i in items if isinstance(i, Change))
    skips = tuple(i for i in items if isinstance(i, Skip))
    return Plan(changes, skips, (CATEGORY,))


def plan_bump(where: Layout | Path, subsystem: str, to: str | None = None, *,
              allow_downgrade: bool = False, create: bool = False) -> Plan:
    """Plan setting one subsystem's version: ``to``, or the next one.

    With ``create`` a subsystem without a file gets one (``to`` required), mode 0644,
    holding the version and a newline. ``version`` is the release ``VERSION`` file.
    """
    key = subsystem_key(subsystem)
    _check_table(where)
    path = version_path(where, key)
    if create and to is not None and not os.path.lexists(path):
        wanted = parse(to, f"{path}: --to {to!r}")
        data = f"{wanted}\n".encode("ascii")
        return _plan([Change(category=CATEGORY, key=key, target=path, old=fsio.ABSENT,
                             new=data, new_sha256=fsio.sha256_bytes(data), new_size=len(data),
                             mode=NEW_MODE, note=f"new {wanted}")])
    if create and to is None:
        raise ConfigError(f"{path}: --create needs --to VERSION")
    current = read(where, key)
    return _plan([_change(current, _target(current, to, allow_downgrade))])


def parse_setting(text: str) -> tuple[str, str]:
    """Split a ``--set NAME=VERSION`` value; a missing ``=`` or side is ConfigError."""
    name, sep, version = text.partition("=")
    if not sep or not version.strip():
        raise ConfigError(f"--set {text!r}: expected NAME=VERSION, like memory=004")
    return name, version


def plan_bulk(where: Layout | Path, settings: Mapping[str, str] | Iterable[tuple[str, str]], *,
              allow_downgrade: bool = False) -> Plan:
    """Plan several bumps as one: every item is checked before anything is planned to change.

    Each problem (a bad or unknown name, a duplicate, an unparsable or lower version) is
    collected, and all of them are reported in one ConfigError, so that one bad item
    means nothing is written.
    """
    pairs = list(settings.items() if isinstance(settings, Mapping) else settings)
    if not pairs:
        raise ConfigError("versions.bulk needs at least one --set NAME=VERSION")
    _check_table(where)
    problems: list[str] = []
    seen: set[str] = set()
    items: list[Change | Skip] = []
    for name, to in pairs:
        try:
            key = subsystem_key(name)
            if key in seen:
                raise ConfigError(f"subsystem {key!r} is set twice")
            seen.add(key)
            current = read(where, key)
            items.append(_change(current, _target(current, to, allow_downgrade)))
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("; ".join(problems) + "; nothing was written")
    return _plan(items)
