"""Legacy backups: listed where the original left them, migrated only when asked."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Project


def legacy_tree(project: Project) -> None:
    project.write({
        "bin/tool": "#!/bin/sh\necho new\n",
        "target/bin/tool": "#!/bin/sh\necho current\n",
        "target/bin/tool.backup.20250714_170157": "#!/bin/sh\necho legacy\n",
        "versions/MEMORY_VERSION": "004\n",
        "versions/MEMORY_VERSION.backup.20250714_170158": "003\n",
        "state/framework_backups/framework_CLAUDE_md_20250714_170156_489.backup": "# old fw\n",
        ".claude-pm/framework_backups/framework_CLAUDE_md_20250101_000000_001.backup": "# x\n",
    })


def test_legacy_lists_without_touching(project: Project) -> None:
    """backups.legacy finds every old location (state dir and beside the config) and writes
    nothing; restore and status never look there."""
    legacy_tree(project)
    before = project.snapshot()

    found = project.json("backups.legacy")["legacy"]
    status = project.json("backups.status")["categories"]

    assert sorted((b["category"], Path(b["path"]).name) for b in found) == [
        ("framework", "framework_CLAUDE_md_20250101_000000_001.backup"),
        ("framework", "framework_CLAUDE_md_20250714_170156_489.backup"),
        ("scripts", "tool.backup.20250714_170157"),
        ("versions", "MEMORY_VERSION.backup.20250714_170158"),
    ]
    assert all(c["backup_count"] == 0 for c in status.values())
    assert project.snapshot() == before


def test_migrate_copies_into_the_tree_once(project: Project) -> None:
    """backups.migrate copies (never moves) under the contract's names, is idempotent, and a
    migrated backup restores with --to."""
    legacy_tree(project)

    dry = project.ok("backups.migrate", "--dry-run")
    first = project.json("backups.migrate")
    second = project.json("backups.migrate")

    assert "would import" in dry.stdout
    names = sorted(Path(c["backup"]).name for c in first["changes"])
    assert names == ["MEMORY_VERSION_backup_20250714_170158",
                     "framework_CLAUDE_md_20250101_000000_001.backup",
                     "framework_CLAUDE_md_20250714_170156_489.backup",
                     "tool_backup_20250714_170157"]
    assert second["changes"] == []
    assert (project.target / "bin/tool.backup.20250714_170157").exists()
    project.ok("backups.verify")
    scripts = project.json("backups.list", "--category=scripts")["backups"]
    assert "nothing to roll back" in project.ok("rollback.scripts").stdout

    project.ok("rollback.scripts", f"--to={scripts[0]['id']}")

    assert (project.target / "bin/tool").read_text() == "#!/bin/sh\necho legacy\n"
