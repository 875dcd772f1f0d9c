"""Scripts: the regular files of the source folder, deployed as ``<target>/<name>``, mode 0755.

Which files are scripts: those whose names match a glob of ``scripts.include``
(default ``*``) and none of ``scripts.exclude`` (default none), matched with
fnmatch against the file name. Dotfiles and what editors, patch tools and
backups leave beside a file (:data:`LEFTOVERS`) are never scripts: the original
deployed an explicit list, and its ``bin/`` held ``VERSION`` and backups that a
"every file" rule would have shipped. A dry run lists each file left out and why.

Scripts belong to the toolkit: a differing target is backed up and replaced,
and ``status`` reports the drift.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping
from fnmatch import fnmatch, translate
from functools import cache, partial
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.categories import SCRIPTS
from deploy.errors import Blocked, ConfigError, DeployError
from deploy.names import check_name
from deploy.plan import Change, Plan, Skip, target_contents, target_state, tick
from deploy.store import Index

CATEGORY = SCRIPTS.name
SCRIPT_MODE = 0o755
VERSION_TIMEOUT = 5.0
INCLUDE = ("*",)
EXCLUDE: tuple[str, ...] = ()
# Never scripts, whatever the globs say: editor swap and backup files, patch and merge
# rejects, and backups like the original's own (claude-pm.backup.20250714_111423).
LEFTOVERS = ("*~", "*.swp", "*.bak", "*.orig", "*.rej", "*.backup*")


@cache
def _matcher(globs: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a name matches any of ``globs``, as ``fnmatch`` matches each: one regex for
    them all (a folder of a thousand files asked seven globs each took 7,000 calls)."""
    if not globs:
        return lambda _name: False
    if "*" in globs:
        return lambda _name: True
    match = re.compile("|".join(translate(glob) for glob in globs)).match
    return lambda name: match(name) is not None


def left_out(name: str, include: tuple[str, ...] = INCLUDE,
             exclude: tuple[str, ...] = EXCLUDE) -> str | None:
    """Why the file ``name`` of the source folder is not a script, or None when it is one."""
    if name.startswith("."):
        return "dotfile"
    if _matcher(LEFTOVERS)(name):
        glob = next(g for g in LEFTOVERS if fnmatch(name, g))
        return f"editor or backup leftover {json.dumps(glob)}"
    if not _matcher(include)(name):
        return f"not matched by scripts.include [{', '.join(map(json.dumps, include))}]"
    if _matcher(exclude)(name):
        glob = next(g for g in exclude if fnmatch(name, g))
        return f"excluded by scripts.exclude {json.dumps(glob)}"
    return None


class Sources(NamedTuple):
    """The source folder's files: the scripts, and the others with why they are not."""

    scripts: dict[str, str]
    left_out: dict[str, tuple[str, str]]  # name -> (path, reason)


def scan(source_dir: Path, include: tuple[str, ...] = INCLUDE,
         exclude: tuple[str, ...] = EXCLUDE) -> Sources:
    """Sort the regular files directly in ``source_dir`` into scripts and the rest."""
    found = Sources({}, {})
    for name, path in _source_paths(source_dir).items():
        reason = left_out(name, include, exclude)
        if reason is None:
            found.scripts[name] = path
        else:
            found.left_out[name] = (path, reason)
    return found


def sources(source_dir: Path, include: tuple[str, ...] = INCLUDE,
            exclude: tuple[str, ...] = EXCLUDE) -> dict[str, Path]:
    """Every script in ``source_dir``, by name (symlinks are not scripts)."""
    return {name: Path(path) for name, path in scan(source_dir, include, exclude).scripts.items()}


def _source_paths(source_dir: Path) -> dict[str, str]:
    try:
        entries = list(os.scandir(source_dir))
    except FileNotFoundError as err:
        raise ConfigError(f"{source_dir}: scripts source folder not found") from err
    except OSError as err:
        raise ConfigError(f"{source_dir}: cannot list scripts: {err.strerror}") from err
    return {e.name: e.path for e in entries
            if e.is_file(follow_symlinks=False) and not fsio.is_temp_name(e.name)}


def select(available: Collection[str], names: Iterable[str] | None, folder: Path,
           others: Mapping[str, tuple[str, str]] | None = None) -> list[str]:
    if not names:
        return sorted(available)
    chosen = []
    for name in names:
        check_name(name, "script name")
        if others is not None and name in others:
            raise ConfigError(f"{folder / name}: not a script ({others[name][1]})")
        if name not in available:
            raise ConfigError(f"{folder / name}: no such script in the source folder")
        chosen.append(name)
    return list(dict.fromkeys(chosen))


def plan(source_dir: Path, target_dir: Path, names: Iterable[str] | None = None, *,
         include: tuple[str, ...] = INCLUDE, exclude: tuple[str, ...] = EXCLUDE) -> Plan:
    """Plan copying each chosen script over its target; unchanged ones are skipped, and
    so (with their reasons, when no names are given) are the files that are not scripts."""
    found = scan(source_dir, include, exclude)
    available = found.scripts
    changes: list[Change] = []
    skips = [] if names else [Skip(CATEGORY, name, Path(path), reason)
                              for name, (path, reason) in sorted(found.left_out.items())]
    chosen = select(available, names, source_dir, found.left_out)
    for n, name in enumerate(chosen, 1):
        tick("planning", n, len(chosen), f"{CATEGORY}/{name}")
        # A file's name is checked like a name given with --name: a script called "-rf"
        # or one whose name is not UTF-8 stops the run before anything is written.
        check_name(name, f"{source_dir}: script")
        target = target_dir / name
        # A large script and its target hash on two cores at once.
        src, old = fsio.read_alongside(available[name], partial(target_contents, target))
        if src is None:
            raise ConfigError(f"{available[name]}: script vanished from the source folder "
                              "while planning; run again")
        if old is not None and old.mode == SCRIPT_MODE and old.same_bytes(src):
            skips.append(Skip(CATEGORY, name, target, "unchanged"))
            continue
        changes.append(Change(category=CATEGORY, key=name, target=target,
                              old=fsio.state_of(old), new=Path(available[name]),
                              new_sha256=src.sha256, new_size=src.size, mode=SCRIPT_MODE))
    return Plan(tuple(changes), tuple(skips), (CATEGORY,))


# States that need no action; any other fails `scripts.status` (exit 3), so CI can gate on it.
SETTLED = ("synchronized", "excluded")


class ScriptStatus(NamedTuple):
    name: str
    state: str  # synchronized | outdated | drifted | not deployed | source missing | excluded
    source: Path | None
    target: Path
    version: str | None = None
    version_failed: bool = False  # --verify ran it and it failed

    @property
    def settled(self) -> bool:
        return self.state in SETTLED


def check_status(rows: Iterable[ScriptStatus]) -> None:
    """Raise for a status that should fail a CI gate: Blocked (exit 3) naming every script
    that is not up to date, else DeployError (exit 1) naming every failed ``--verify``."""
    rows = list(rows)
    unsettled = [f"{r.target} ({r.state})" for r in rows if not r.settled]
    if unsettled:
        raise Blocked(f"{len(unsettled)} script(s) not up to date: {', '.join(unsettled)}; "
                      "run `invoke deploy.scripts`")
    failed = [f"{r.target} ({r.version})" for r in rows if r.version_failed]
    if failed:
        raise DeployError(f"{len(failed)} script(s) failed --verify: {', '.join(failed)}")


def _version(target: Path) -> str:
    try:
        done = subprocess.run([str(target), "--version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"error: timed out after {VERSION_TIMEOUT:g}s"
    except OSError as err:
        return f"error: {err.strerror}"
    if done.returncode != 0:
        return f"error: exit {done.returncode}"
    lines = done.stdout.strip().splitlines()
    return lines[0] if lines else ""


def status(source_dir: Path, target_dir: Path, index: Index | None, *,
           verify: bool = False, include: tuple[str, ...] = INCLUDE,
           exclude: tuple[str, ...] = EXCLUDE) -> list[ScriptStatus]:
    """Per script: synchronized, outdated (source newer), drifted (target edited since we wrote
    it), not deployed, source missing (we deployed it, the source is gone), or excluded (we
    deployed it, its source is no script any more)."""
    found = scan(source_dir, include, exclude)
    available = {name: Path(path) for name, path in found.scripts.items()}
    names = set(available)
    if index is not None:
        names |= index.changes.keys(CATEGORY)
    result = []
    for name in sorted(names):
        target = target_dir / name
        current = target_state(target)
        last = index.changes.last_write(str(target)) if index is not None else None
        src = available.get(name)
        if src is None:
            if last is None or not current.exists:
                continue
            state = "excluded" if name in found.left_out else "source missing"
        elif not current.exists:
            state = "not deployed"
        elif last is not None and current.sha256 != last.new_sha256:
            state = "drifted"
        elif current.sha256 == fsio.read_state(src).sha256 and current.mode == SCRIPT_MODE:
            state = "synchronized"
        elif last is None:
            state = "drifted"
        else:
            state = "outdated"
        version = _version(target) if verify and current.exists else None
        result.append(ScriptStatus(name=name, state=state, source=src, target=target,
                                   version=version, version_failed=version is not None
                                   and version.startswith("error:")))
    return result
