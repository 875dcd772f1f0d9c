"""Reading the tree without its index: the contract's backup names parsed back, each file
matched to its target and hashed (``backups.reindex``, issue 13).

A name is ``<stem>[_NN]<suffix>`` (``deploy.store.naming``); each category's pattern is
built from its stem and suffix in the category table, so the two cannot drift apart:

- ``scripts/{script}_backup_{YYYYmmdd_HHMMSS}[_NN]``
- ``versions/{VERSION_FILE}_backup_{YYYYmmdd_HHMMSS}[_NN]``
- ``templates/{id}/{id}_{YYYYmmdd_HHMMSS}[_NN].backup``
- ``framework/framework_CLAUDE_md_{YYYYmmdd_HHMMSS_mmm}[_NN].backup``
- ``parent_directory_manager/{filename}_{YYYYmmdd_HHMMSS}[_NN].backup``

What a name carries (the script, the version file's name, the template id, the parent's
file name; nothing for the framework) is looked up in :data:`Targets`, which the task
layer builds from the config: the store never reads the config. A name that does not
parse, or that no target or more than one could own (a parent ``CLAUDE.md`` with two
parents configured), is reported, never guessed.
"""

from __future__ import annotations

import os
import re
import stat
import string
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from deploy import categories
from deploy.errors import Untrusted
from deploy.names import shown
from deploy.store import stored, trust
from deploy.store.index.rows import ZST
from deploy.store.tree import Store, describe

DEFAULT_MODE = 0o644  # a target's mode when neither the config nor the target tells


class Target(NamedTuple):
    """Where a backup goes back to: the index key, the target, the mode a restore gives it
    (None: the target's own mode now, else DEFAULT_MODE)."""

    key: str
    path: Path
    mode: int | None = None


# (category, the name a backup's file name carries) -> the targets it could belong to.
Targets = Mapping[tuple[str, str], Sequence[Target]]


class Parsed(NamedTuple):
    """A backup file name read back: its category, what it carries, its time and counter."""

    category: str
    name: str
    when: datetime
    counter: int
    compressed: bool = False  # the file is ``<name>.zst``


class Entry(NamedTuple):
    """One file of the tree to record: the row ``backups.reindex`` writes for it."""

    category: str
    key: str
    target: Path
    backup: Path
    sha256: str
    size: int
    mode: int
    when: datetime
    counter: int
    compressed: bool = False        # ``backup`` is ``<name>.zst``: sha256 and size are the
    stored_size: int | None = None  # original bytes', stored_size the file's
    inode: tuple[int, int] | None = None  # (st_dev, st_ino): hard links share one

    @property
    def created(self) -> str:
        """The row's ``created``: the name's local time, with its offset."""
        return self.when.astimezone().isoformat(timespec="milliseconds")


class Unrecorded(NamedTuple):
    """A file of the tree that cannot be recorded, and why."""

    path: Path
    reason: str


def _pattern(cat: categories.Category) -> re.Pattern[str]:
    stamp = r"\d{8}_\d{6}" + (r"_\d{3}" if cat.millis else "")
    parts = []
    for literal, field, _spec, _conversion in string.Formatter().parse(cat.stem):
        parts.append(re.escape(literal))
        if field == "name":
            parts.append("(?P<name>.+)")
        elif field == "stamp":
            parts.append(f"(?P<stamp>{stamp})")
    return re.compile("".join(parts) + r"(?:_(?P<counter>\d{2,}))?" + re.escape(cat.suffix)
                      + r"\Z", re.DOTALL)


PATTERNS = {c.name: _pattern(c) for c in categories.TABLE}
# The category of each top folder of the tree.
BY_FOLDER = {c.folder.partition("/")[0]: c for c in categories.TABLE}


def parse(relative: Path) -> Parsed | str:
    """Read a path relative to the tree back into its category, name and time; a string
    says why it is not one of the contract's backup names."""
    parts = relative.parts
    cat = BY_FOLDER.get(parts[0]) if parts else None
    if cat is None:
        return "not in a category folder"
    nested = "/" in cat.folder
    if len(parts) != (3 if nested else 2):
        return (f"not a backup name of {cat.name}: its backups lie in "
                f"{cat.folder.replace('{key}', '<id>')}/")
    leaf = parts[-1]
    compressed = leaf.endswith(ZST) and len(leaf) > len(ZST)
    match = PATTERNS[cat.name].match(leaf.removesuffix(ZST) if compressed else leaf)
    if match is None:
        form = "YYYYmmdd_HHMMSS" + ("_mmm" if cat.millis else "")
        stem = cat.stem.format(name="<name>", stamp=form)
        return f"not a backup name of {cat.name} ({stem}[_NN]{cat.suffix})"
    name = match.group("name") if "name" in match.groupdict() else ""
    if nested and name != parts[1]:
        return f"names {shown(name)}, but lies in the folder of {shown(parts[1])}"
    text = match.group("stamp")
    try:
        when = datetime.strptime(text[:15], "%Y%m%d_%H%M%S")
    except ValueError:
        return f"its time {text} is not a date"
    if cat.millis:
        when = when.replace(microsecond=int(text[16:]) * 1000)
    return Parsed(cat.name, name or "", when, int(match.group("counter") or 0), compressed)


def names(store: Store, files: Iterable[Path] | None = None) -> set[tuple[str, str]]:
    """Every (category, name) the tree's backup names carry: what :data:`Targets` must
    answer for."""
    found = set()
    for path in store.backup_files() if files is None else files:
        parsed = parse(path.relative_to(store.tree))
        if isinstance(parsed, Parsed):
            found.add((parsed.category, parsed.name))
    return found


def _what(category: str, name: str) -> str:
    return f"{category} {shown(name)}" if name else category


def _mode(target: Target) -> int:
    if target.mode is not None:
        return target.mode
    try:
        st = os.lstat(target.path)
    except OSError:
        return DEFAULT_MODE
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else DEFAULT_MODE


def entry(store: Store, path: Path, targets: Targets) -> Entry | Unrecorded:
    """The row to record for one file of the tree, or why there is none."""
    parsed = parse(path.relative_to(store.tree))
    if isinstance(parsed, str):
        return Unrecorded(path, parsed)
    owners = targets.get((parsed.category, parsed.name), ())
    what = _what(parsed.category, parsed.name)
    if not owners:
        return Unrecorded(path, f"no configured target for {what}; it cannot be restored "
                          "by rollback (cp restores it by hand)")
    if len(owners) > 1:
        shown_targets = ", ".join(str(t.path) for t in owners)
        return Unrecorded(path, f"{len(owners)} configured targets could own this {what} "
                          f"backup ({shown_targets}); cannot tell which: restore it by hand "
                          "with cp")
    owner = owners[0]
    try:
        st = trust.check(path, "backup", folder=False)
        state = stored.read_original(path, parsed.compressed)
    except Untrusted as err:
        return Unrecorded(path, str(err).removeprefix(f"{path}: "))
    except stored.CorruptFrame as err:
        return Unrecorded(path, f"a compressed backup that does not decompress: {err}")
    except OSError as err:
        return Unrecorded(path, f"cannot read backup: {describe(err)}")
    if st is None or not state.exists or state.sha256 is None:
        return Unrecorded(path, "gone while the tree was read")
    return Entry(parsed.category, owner.key, owner.path, path, state.sha256, state.size,
                 _mode(owner), parsed.when, parsed.counter, parsed.compressed, st.st_size,
                 (st.st_dev, st.st_ino))


def scan(store: Store, targets: Targets, known: AbstractSet[str] = frozenset()
         ) -> tuple[list[Entry], list[Unrecorded]]:
    """Every file of the tree no row of the index holds (``known``: paths relative to the
    tree), as an entry to record or a file that cannot be; entries oldest name first."""
    entries: list[Entry] = []
    unrecorded: list[Unrecorded] = []
    files = store.backup_files()
    present = {str(path.relative_to(store.tree)) for path in files}
    for path in files:
        rel = str(path.relative_to(store.tree))
        if rel in known or rel + ZST in known:
            continue  # a row holds it (or its compressed form: this is a leftover)
        if rel.endswith(ZST) and rel.removesuffix(ZST) in present:
            continue  # a compression cut short: the plain file is the backup
        found = entry(store, path, targets)
        if isinstance(found, Entry):
            entries.append(found)
        else:
            unrecorded.append(found)
    entries.sort(key=lambda e: (e.when, e.counter, str(e.backup)))
    return entries, unrecorded
