"""Scripts: every regular file in the source folder, deployed as ``<target>/<name>``, mode 0755.

Scripts belong to the toolkit: a differing target is backed up and replaced,
and ``status`` reports the drift.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection, Iterable
from functools import partial
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.categories import SCRIPTS
from deploy.errors import ConfigError
from deploy.names import check_name
from deploy.plan import Change, Plan, Skip, target_contents, target_state
from deploy.store import Index

CATEGORY = SCRIPTS.name
SCRIPT_MODE = 0o755
VERSION_TIMEOUT = 5.0


def sources(source_dir: Path) -> dict[str, Path]:
    """Every regular file directly in ``source_dir``, by name (symlinks are not scripts)."""
    return {name: Path(path) for name, path in _source_paths(source_dir).items()}


def _source_paths(source_dir: Path) -> dict[str, str]:
    try:
        entries = list(os.scandir(source_dir))
    except FileNotFoundError as err:
        raise ConfigError(f"{source_dir}: scripts source folder not found") from err
    except OSError as err:
        raise ConfigError(f"{source_dir}: cannot list scripts: {err.strerror}") from err
    return {e.name: e.path for e in entries
            if e.is_file(follow_symlinks=False) and not fsio.is_temp_name(e.name)}


def select(available: Collection[str], names: Iterable[str] | None, folder: Path) -> list[str]:
    if not names:
        return sorted(available)
    chosen = []
    for name in names:
        check_name(name, "script name")
        if name not in available:
            raise ConfigError(f"{folder / name}: no such script in the source folder")
        chosen.append(name)
    return list(dict.fromkeys(chosen))


def plan(source_dir: Path, target_dir: Path, names: Iterable[str] | None = None) -> Plan:
    """Plan copying each chosen script over its target; unchanged ones are skipped."""
    available = _source_paths(source_dir)
    changes, skips = [], []
    for name in select(available, names, source_dir):
        target = target_dir / name
        # A large script and its target hash on two cores at once.
        src, old = fsio.read_alongside(available[name], partial(target_contents, target))
        if src is None:
            raise ConfigError(f"{available[name]}: script vanished from the source folder "
                              "while planning; run again")
        if old is not None and old.mode == SCRIPT_MODE and old.same_bytes(src):
            skips.append(Skip(CATEGORY, name, target, "unchanged"))
            continue
        changes.append(Change(CATEGORY, name, target, fsio.state_of(old),
                              Path(available[name]), src.sha256, src.size, SCRIPT_MODE))
    return Plan(tuple(changes), tuple(skips), (CATEGORY,))


class ScriptStatus(NamedTuple):
    name: str
    state: str  # synchronized | outdated | drifted | not deployed | source missing
    source: Path | None
    target: Path
    version: str | None = None


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
           verify: bool = False) -> list[ScriptStatus]:
    """Per script: synchronized, outdated (source newer), drifted (target edited since we wrote
    it), not deployed, or source missing (we deployed it, the source is gone)."""
    available = sources(source_dir)
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
            state = "source missing"
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
        result.append(ScriptStatus(name, state, src, target, version))
    return result
