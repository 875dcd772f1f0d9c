"""Backups the original code left in its old locations, and their opt-in migration.

Nothing migrates by itself (the guide: "no automatic migration"); restore reads
only the central tree and its index. ``migrate`` copies (never moves) each
legacy file into the central tree under the contract's name and records it in
the index as ``imported``: listed, verifiable, restorable with ``--to ID``, but
never mistaken for a run's change by the step-back rollbacks.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from deploy.config import Config

# The old names carried a timestamp; we keep it for the new name when it parses.
STAMP = re.compile(r"(\d{8})_?(\d{6})(?:_(\d{3}))?")


class LegacyBackup(NamedTuple):
    category: str
    key: str
    path: Path
    target: Path
    size: int
    when: datetime


def _when(path: Path) -> datetime:
    match = STAMP.search(path.name)
    if match:
        try:
            stamp = datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
            return stamp.replace(microsecond=int(match.group(3) or 0) * 1000)
        except ValueError:
            pass
    # Only for naming the copy: order in the tree comes from the index, never from mtimes.
    return datetime.fromtimestamp(path.lstat().st_mtime)


def _files(folder: Path, pattern: str) -> list[Path]:
    try:
        return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.is_symlink())
    except OSError:
        return []


def find(cfg: Config) -> list[LegacyBackup]:
    """Every legacy backup of the contract's old locations, oldest name first per folder."""
    found: list[LegacyBackup] = []
    state_dirs = dict.fromkeys([cfg.state_dir, cfg.path.resolve().parent / ".claude-pm"])

    def add(category: str, key: str, path: Path, target: Path) -> None:
        found.append(LegacyBackup(category, key, path, target, path.lstat().st_size, _when(path)))

    for state in state_dirs:
        for path in _files(state / "framework_backups", "framework_CLAUDE_md_*.backup"):
            if cfg.framework_install_to is not None:
                add("framework", "framework", path, cfg.framework_install_to)
        templates = {t.id: t.target for t in cfg.templates}
        for folder in sorted((state / "template_manager" / "backups").glob("*/")):
            if folder.name in templates:
                for path in _files(folder, "*.backup"):
                    add("templates", folder.name, path, templates[folder.name])
    for path in _files(cfg.scripts_target, "*.backup.*"):
        name = path.name.split(".backup.", 1)[0]
        add("scripts", name, path, cfg.scripts_target / name)
    for path in _files(cfg.versions_dir, "*_VERSION.backup.*"):
        filename = path.name.split(".backup.", 1)[0]
        add("versions", filename[: -len("_VERSION")].lower(), path, cfg.versions_dir / filename)
    return found

