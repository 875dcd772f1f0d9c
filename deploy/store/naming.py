"""The exact backup file names of the contract, from the category table.

A name is ``<stem><suffix>``; when it is taken (on disk, or by another change of
the same run) ``_01``, ``_02`` ... go on the stem. Order never comes from these
names: the index's sequence numbers give it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from deploy import categories


def stamp(when: datetime, *, millis: bool = False) -> str:
    text = when.strftime("%Y%m%d_%H%M%S")
    return f"{text}_{when.microsecond // 1000:03d}" if millis else text


def category_folder(category: str, key: str) -> str:
    """The folder, relative to the backup tree, that holds a category's backups."""
    return categories.get(category).folder.format(key=key)


def name_key(category: str, key: str, target_name: str) -> str:
    """What a backup is named after: the change's key (script name, template id), the
    subsystem's version file name (``MEMORY_VERSION``, ``VERSION``), or the target's file
    name for parents (keyed by their folder)."""
    if category == categories.VERSIONS.name:
        return categories.version_file_name(key)
    return target_name if categories.get(category).named_after_target else key


def backup_stem(category: str, key: str, when: datetime) -> tuple[str, str]:
    """Return (stem, suffix) of the contract's backup name for one target.

    ``key`` is what :func:`name_key` returns; the framework's stem does not use it.
    """
    cat = categories.get(category)
    return cat.stem.format(name=key, stamp=stamp(when, millis=cat.millis)), cat.suffix


def unique_name(stem: str, suffix: str, taken: Callable[[str], bool]) -> str:
    """``stem + suffix``, or with ``_01``, ``_02`` ... appended to the stem while taken."""
    name = stem + suffix
    counter = 0
    while taken(name):
        counter += 1
        name = f"{stem}_{counter:02d}{suffix}"
    return name


class Namer:
    """Names a run's backups: unique on disk, among the names this run already gave, and
    against every name the index ever recorded (``known``), pruned or live: a backup
    deleted by hand must not let a later one take its name, or two rows would share one
    file and pruning the older would delete the newer."""

    def __init__(self, tree: Path, when: datetime,
                 known: Callable[[str], bool] = lambda _relative: False) -> None:
        self.tree = tree
        self.when = when
        self.known = known
        self.reserved: set[Path] = set()

    def name(self, category: str, key: str, target: Path, when: datetime | None = None) -> Path:
        """The backup path for ``target``, stamped ``when`` (default: the run's time)."""
        folder = self.tree / category_folder(category, key)
        stem, suffix = backup_stem(category, name_key(category, key, target.name),
                                   when or self.when)

        def taken(name: str) -> bool:
            path = folder / name
            return path in self.reserved or os.path.lexists(path) \
                or self.known(str(path.relative_to(self.tree)))

        path = folder / unique_name(stem, suffix, taken)
        self.reserved.add(path)
        return path
