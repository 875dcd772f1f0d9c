"""Fixture trees in the original's old backup layouts (v0.7.5 and v0.8.0), with our own bytes.

The layouts and names are those the research memo read off the original's code
(``notes/framework.md`` section 5); every byte in the files is made up here. Each
builder returns what ``backups.legacy`` must say of each file it wrote: the category
and the target (relative to the project, ``~/`` for HOME), or the reason it is not
offered for migration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple


class Expect(NamedTuple):
    category: str
    target: str | None        # relative to the project root; None: target unknown
    reason: str | None = None  # a fragment of the reason it is not offered


def write(root: Path, files: dict[str, bytes], mode: int = 0o644) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


def v075_tree(root: Path, home: Path) -> dict[str, Expect]:
    """What v0.7.5 left: framework template backups in ``framework_backups/`` (under the
    state dir and beside the config), template and parent directory manager backups under
    ``.claude-pm/``, and ``.backup.<ts>`` files beside the scripts and the version files."""
    write(root, {
        "state/framework_backups/framework_CLAUDE_md_20250711_174138_086.backup":
            b"# fw template, 11 July\n",
        ".claude-pm/framework_backups/framework_CLAUDE_md_20250713_234932_584.backup":
            b"# fw template, 13 July\n",
        ".claude-pm/framework_backups/framework_CLAUDE_md_20250713_234932_584_01.backup":
            b"# fw template, 13 July, same ms\n",
        ".claude-pm/template_manager/backups/memory-config/memory-config_20250712_101010.backup":
            b"memory: 2\n",
        "state/template_manager/backups/memory-config/memory-config_20250712_101011.backup":
            b"memory: 1\n",
        ".claude-pm/parent_directory_manager/backups/CLAUDE.md_20250712_090000.backup":
            b"# parent, v0.7.5\n",
        "versions/MEMORY_VERSION.backup.20250714_111423": b"002",
        "versions/CLI_VERSION.backup.20250714_111424": b"001",
    })
    write(root, {"target/bin/claude-pm.backup.20250714_111423": b"#!/bin/sh\necho 0.7.4\n",
                 "target/bin/cmpm.backup.20250714_111423": b"#!/bin/sh\necho cmpm\n"}, 0o755)
    return {
        "state/framework_backups/framework_CLAUDE_md_20250711_174138_086.backup":
            Expect("framework", "target/framework/CLAUDE.md"),
        ".claude-pm/framework_backups/framework_CLAUDE_md_20250713_234932_584.backup":
            Expect("framework", "target/framework/CLAUDE.md"),
        ".claude-pm/framework_backups/framework_CLAUDE_md_20250713_234932_584_01.backup":
            Expect("framework", "target/framework/CLAUDE.md"),
        ".claude-pm/template_manager/backups/memory-config/memory-config_20250712_101010.backup":
            Expect("templates", "target/memory.yaml"),
        "state/template_manager/backups/memory-config/memory-config_20250712_101011.backup":
            Expect("templates", "target/memory.yaml"),
        ".claude-pm/parent_directory_manager/backups/CLAUDE.md_20250712_090000.backup":
            Expect("parents", "target/parent1/CLAUDE.md"),
        "versions/MEMORY_VERSION.backup.20250714_111423":
            Expect("versions", "versions/MEMORY_VERSION"),
        "versions/CLI_VERSION.backup.20250714_111424": Expect("versions", "versions/CLI_VERSION"),
        "target/bin/claude-pm.backup.20250714_111423": Expect("scripts", "target/bin/claude-pm"),
        "target/bin/cmpm.backup.20250714_111423": Expect("scripts", "target/bin/cmpm"),
    }


def v080_tree(root: Path, home: Path) -> dict[str, Expect]:
    """What v0.8.0 left: its script deployer's tree under ``~/.local/.claude-pm/backups/``,
    and ``.claude-pm/backups/<category>/`` beside the config (the working folder and the
    framework root): the framework template, parent CLAUDE.md files and the version files
    the parent directory manager bumped, templates per id, and the version manager's."""
    rel_home = os.path.relpath(home, root)
    scripts = f"{rel_home}/.local/.claude-pm/backups/scripts"
    write(root, {
        f"{scripts}/claude-pm_backup_20250714_170157": b"#!/usr/bin/env python3\n# 0.7.5\n",
        f"{scripts}/claude-pm_backup_20250714_170201": b"#!/usr/bin/env python3\n# 0.7.6\n",
        ".claude-pm/backups/framework/framework_CLAUDE_md_20250714_162937_811.backup":
            b"# fw template 012\n",
        ".claude-pm/backups/parent_directory_manager/CLAUDE.md_20250714_162937.backup":
            b"# parent CLAUDE.md, 012-001\n",
        ".claude-pm/backups/parent_directory_manager/CLAUDE.md_20250714_162937_01.backup":
            b"# parent CLAUDE.md, 012-002\n",
        ".claude-pm/backups/parent_directory_manager/MEMORY_VERSION_20250714_163000.backup":
            b"003",
        ".claude-pm/backups/templates/memory-config/memory-config_20250714_170000.backup":
            b"memory: 3\n",
        ".claude-pm/backups/versions/SERVICES_VERSION_backup_20250714_170158": b"004",
        ".claude-pm/backups/versions/VERSION_backup_20250714_170158": b"002",
    }, 0o644)
    (root / scripts / "claude-pm_backup_20250714_170157").chmod(0o755)  # copy2 kept 0755
    return {
        f"{scripts}/claude-pm_backup_20250714_170157": Expect("scripts", "target/bin/claude-pm"),
        f"{scripts}/claude-pm_backup_20250714_170201": Expect("scripts", "target/bin/claude-pm"),
        ".claude-pm/backups/framework/framework_CLAUDE_md_20250714_162937_811.backup":
            Expect("framework", "target/framework/CLAUDE.md"),
        ".claude-pm/backups/parent_directory_manager/CLAUDE.md_20250714_162937.backup":
            Expect("parents", "target/parent1/CLAUDE.md"),
        ".claude-pm/backups/parent_directory_manager/CLAUDE.md_20250714_162937_01.backup":
            Expect("parents", "target/parent1/CLAUDE.md"),
        ".claude-pm/backups/parent_directory_manager/MEMORY_VERSION_20250714_163000.backup":
            Expect("versions", "versions/MEMORY_VERSION"),
        ".claude-pm/backups/templates/memory-config/memory-config_20250714_170000.backup":
            Expect("templates", "target/memory.yaml"),
        ".claude-pm/backups/versions/SERVICES_VERSION_backup_20250714_170158":
            Expect("versions", "versions/SERVICES_VERSION"),
        ".claude-pm/backups/versions/VERSION_backup_20250714_170158":
            Expect("versions", None, "target unknown"),
    }


# Files in the old places that are not backups the original made: no timestamp, a
# timestamp that is no date, another tool's names, temp files, a folder.
NOT_LEGACY = {
    "target/bin/claude-pm.backup": b"x",
    "target/bin/claude-pm.backup.latest": b"x",
    "target/bin/claude-pm.backup.20251399_000000": b"x",
    "target/bin/notes.bak": b"x",
    "versions/MEMORY_VERSION.backup": b"x",
    "versions/MEMORY_VERSION.backup.2025": b"x",
    "state/framework_backups/framework_CLAUDE_md_latest.backup": b"x",
    "state/framework_backups/framework_CLAUDE_md_20250714_162937.backup": b"x",  # no ms
    ".claude-pm/backups/framework/framework_CLAUDE_md.backup": b"x",
    ".claude-pm/backups/parent_directory_manager/CLAUDE.md.backup": b"x",
    ".claude-pm/backups/templates/memory-config/memory-config.backup": b"x",
    ".claude-pm/backups/templates/memory-config/other_20250714_170000.backup": b"x",
    ".claude-pm/backups/versions/MEMORY_VERSION_backup_yesterday": b"x",
    ".claude-pm/backups/versions/.MEMORY_VERSION_backup_20250714_170158.deploy-tmp-1-ab": b"x",
}

# Beside the base config: one parent folder and the memory-config template.
CONFIG_EXTRA = """
[[tool.deploy.templates]]
id = "memory-config"
source = "tpl/memory.yaml.j2"
target = "target/memory.yaml"
"""


def with_parents(base: str, parents: list[str]) -> str:
    listed = ", ".join(f'"{p}"' for p in parents)
    return base.replace("parents = []", f"parents = [{listed}]") + CONFIG_EXTRA
