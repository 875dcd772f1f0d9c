"""Legacy backups: listed where the original left them, migrated only when asked.

Every test builds its own fixture tree in the original's v0.7.5 or v0.8.0 layout
(``tests/legacy_trees.py``: the memo's names, our own bytes) and drives the real CLI.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, Project
from tests.legacy_trees import NOT_LEGACY, Expect, v075_tree, v080_tree, with_parents, write


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


def listed(project: Project, *args: str) -> dict[str, dict[str, object]]:
    """``backups.legacy --json`` by path relative to the project."""
    doc = project.json("backups.legacy", *args)
    assert doc["schema_version"] == 1
    return {os.path.relpath(b["path"], project.root): b for b in doc["legacy"]}


def expected(project: Project, tree: dict[str, Expect]) -> dict[str, tuple[object, ...]]:
    return {rel: (e.category, str(project.root / e.target) if e.target else None)
            for rel, e in tree.items()}


def seen(found: dict[str, dict[str, object]]) -> dict[str, tuple[object, ...]]:
    return {rel: (b["category"], b["target"]) for rel, b in found.items()}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def configure(project: Project, parents: list[str]) -> None:
    project.configure(base=with_parents(BASE_CONFIG, parents))


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


def test_v075_locations_with_their_targets(project: Project, scratch_home: Path) -> None:
    """Every v0.7.5 location: framework_backups/ under the state dir and beside the config,
    template_manager/backups/<id>/, parent_directory_manager/backups/, and .backup.<ts>
    beside the scripts and the version files; each with the target the config gives."""
    configure(project, ["target/parent1"])
    tree = v075_tree(project.root, scratch_home)
    write(project.root, NOT_LEGACY)

    found = listed(project)

    assert seen(found) == expected(project, tree)
    assert all(b["origin"] == "v0.7.5" and b["migratable"] for b in found.values())
    assert found["target/bin/cmpm.backup.20250714_111423"]["time"] == "2025-07-14T11:14:23"
    framework = ".claude-pm/framework_backups/framework_CLAUDE_md_20250713_234932_584.backup"
    assert found[framework]["time"] == "2025-07-13T23:49:32.584000"


def test_v080_locations_with_their_targets(project: Project, scratch_home: Path) -> None:
    """Every v0.8.0 location: ~/.local/.claude-pm/backups/scripts/ (its script deployer's
    tree) and .claude-pm/backups/{framework,parent_directory_manager,templates/<id>,versions}/
    beside the config; a VERSION backup names no one file, so its target is unknown."""
    configure(project, ["target/parent1"])
    tree = v080_tree(project.root, scratch_home)
    write(project.root, NOT_LEGACY)

    found = listed(project)

    assert seen(found) == expected(project, tree)
    assert {b["origin"] for b in found.values()} == {"v0.8.0"}
    unknown = found[".claude-pm/backups/versions/VERSION_backup_20250714_170158"]
    assert unknown["migratable"] is False and "target unknown" in str(unknown["reason"])
    assert sum(b["migratable"] for b in found.values()) == len(tree) - 1


@pytest.mark.parametrize("parents", [[], ["target/parent1", "target/parent2"]])
def test_parent_backup_without_one_parent_is_target_unknown(
        project: Project, scratch_home: Path, parents: list[str]) -> None:
    """A parent CLAUDE.md backup names no folder: with no parent or several configured its
    target is unknown, it is listed as such and never migrated."""
    configure(project, parents)
    v080_tree(project.root, scratch_home)
    rel = ".claude-pm/backups/parent_directory_manager/CLAUDE.md_20250714_162937.backup"

    found = listed(project)
    text = project.ok("backups.legacy").stdout
    migrated = project.json("backups.migrate")

    assert found[rel]["target"] is None and found[rel]["migratable"] is False
    assert "target unknown" in str(found[rel]["reason"])
    assert "target unknown" in text
    assert rel in {os.path.relpath(s["path"], project.root) for s in migrated["skipped"]}
    assert not any(c["category"] == "parents" for c in migrated["changes"])
    assert project.json("backups.list", "--category=parents")["backups"] == []


def test_names_without_a_timestamp_are_not_legacy(project: Project) -> None:
    """Only names carrying a real timestamp in the original's pattern are legacy backups."""
    configure(project, ["target/parent1"])
    write(project.root, NOT_LEGACY)

    assert listed(project) == {}
    assert "no legacy backups found" in project.ok("backups.legacy").stdout


def test_the_toolkits_own_tree_beside_the_config_is_never_scanned(project: Project) -> None:
    """With state_dir = ".claude-pm", .claude-pm/backups/ beside the config is the central
    tree, whose names look exactly like v0.8.0's: it is named as not scanned, and none of
    its files is listed or migrated."""
    project.configure(base=BASE_CONFIG.replace('state_dir = "state"', 'state_dir = ".claude-pm"'))
    project.write({"bin/tool": "#!/bin/sh\necho 1\n", "target/bin/tool": "#!/bin/sh\necho 0\n",
                   "versions/MEMORY_VERSION": "004\n"})
    project.ok("deploy.scripts")
    project.ok("versions.bump", "memory")
    tree = project.root / ".claude-pm" / "backups"
    assert len(list((tree / "scripts").iterdir())) == 1  # tool_backup_<ts>, v0.8.0's shape

    doc = project.json("backups.legacy")
    migrated = project.json("backups.migrate")

    assert doc["legacy"] == []
    assert [n["path"] for n in doc["not_scanned"]] == [str(tree / name) for name in
                                                       ("framework",
                                                        "parent_directory_manager",
                                                        "templates", "versions")]
    assert migrated["run"] is None and migrated["changes"] == []


def test_a_tree_reached_through_a_symlink_is_never_scanned(project: Project) -> None:
    """.claude-pm/backups beside the config as a symlink to the central tree: recognized by
    its inode, not scanned."""
    project.write({"bin/tool": "#!/bin/sh\necho 1\n", "target/bin/tool": "#!/bin/sh\necho 0\n"})
    project.ok("deploy.scripts")
    (project.root / ".claude-pm").mkdir()
    (project.root / ".claude-pm" / "backups").symlink_to(project.tree)

    doc = project.json("backups.legacy")

    assert doc["legacy"] == [] and len(doc["not_scanned"]) == 4


def test_a_file_the_index_names_is_never_legacy(project: Project) -> None:
    """A target the toolkit deployed is its own even when it is named like a legacy backup."""
    project.configure("""
        [[tool.deploy.templates]]
        id = "odd"
        source = "tpl/odd.j2"
        target = "target/bin/notes.backup.20250101_000000"
    """)
    project.write({"tpl/odd.j2": "hello\n"})
    project.ok("deploy.templates")
    assert (project.target / "bin/notes.backup.20250101_000000").is_file()

    assert listed(project) == {}


def test_migrate_then_remove_originals(project: Project, scratch_home: Path) -> None:
    """Every offered file is imported once (0600 in 0700 folders), re-hashed against its
    original, and only --remove-originals removes originals, only those verified; files
    not offered stay; a rerun finds nothing."""
    configure(project, ["target/parent1"])
    tree = {**v075_tree(project.root, scratch_home), **v080_tree(project.root, scratch_home)}
    offered = [rel for rel, e in tree.items() if e.target]
    hashes = {rel: sha(project.root / rel) for rel in tree}

    first = project.json("backups.migrate")
    again = project.json("backups.migrate")
    removing = project.json("backups.migrate", "--remove-originals")
    last = project.json("backups.migrate", "--remove-originals")

    assert first["schema_version"] == 1 and first["run"] is not None
    assert sorted(os.path.relpath(c["source"], project.root) for c in first["changes"]) \
        == sorted(offered)
    assert len(first["verified"]) == len(offered)
    assert again["run"] is None and again["changes"] == [] and again["removed"] == []
    assert removing["run"] is None
    assert sorted(os.path.relpath(p, project.root) for p in removing["removed"]) \
        == sorted(offered)
    assert last["removed"] == [] and last["changes"] == []
    for rel in tree:
        assert (project.root / rel).exists() == (rel not in offered), rel
    rows = project.json("backups.list")["backups"]
    assert sorted(r["sha256"] for r in rows) == sorted(hashes[rel] for rel in offered)
    for r in rows:
        path = Path(r["path"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    project.ok("backups.verify")


def test_identical_backups_of_one_target_import_once(project: Project, scratch_home: Path
                                                     ) -> None:
    """The same bytes for the same target in two old places (v0.7.5 beside the script, v0.8.0
    in its tree) make one import; both originals verify against it."""
    rel_home = os.path.relpath(scratch_home, project.root)
    data = b"#!/bin/sh\necho same\n"
    write(project.root, {
        "target/bin/claude-pm.backup.20250714_111423": data,
        f"{rel_home}/.local/.claude-pm/backups/scripts/claude-pm_backup_20250714_170157": data,
    })

    doc = project.json("backups.migrate", "--remove-originals")

    assert len(doc["changes"]) == 1 and len(doc["verified"]) == 2 and len(doc["removed"]) == 2


def test_a_legacy_backup_the_tree_holds_already_is_linked(project: Project) -> None:
    """A legacy backup of bytes a deploy's backup holds already becomes a hard link to it
    (dedupe, as for a deploy's backups); verify stays clean, and it restores with --to."""
    project.write({"bin/tool": "#!/bin/sh\necho 1\n"})
    project.ok("deploy.scripts")
    project.write({"bin/tool": "#!/bin/sh\necho 2\n"})
    project.ok("deploy.scripts")  # backup 2: version 1
    write(project.root, {"target/bin/tool.backup.20250714_170157": b"#!/bin/sh\necho 1\n"},
          0o755)

    doc = project.json("backups.migrate")
    imported = Path(doc["changes"][0]["backup"])
    deployed = Path(str(project.json("backups.list")["backups"][-1]["path"]))

    assert len(doc["changes"]) == 1
    assert imported.stat().st_ino == deployed.stat().st_ino != \
        (project.root / "target/bin/tool.backup.20250714_170157").stat().st_ino
    project.ok("backups.verify")
    project.ok("rollback.scripts", f"--to={doc['changes'][0]['backup_id']}")
    assert (project.target / "bin/tool").read_text() == "#!/bin/sh\necho 1\n"


def test_an_original_whose_copy_does_not_verify_stays(project: Project) -> None:
    """A copy in the tree that no longer matches its original: migrate --remove-originals
    exits 1 naming it, keeps that original, and removes the ones that verified."""
    legacy_tree(project)
    project.json("backups.migrate")
    copy = project.tree / "scripts" / "tool_backup_20250714_170157"
    copy.write_bytes(copy.read_bytes()[:-1] + b"X")

    done = project.invoke("backups.migrate", "--remove-originals")

    assert done.returncode == 1, done.stderr
    assert str(copy) in done.stderr and "corrupt" in done.stderr
    assert (project.target / "bin/tool.backup.20250714_170157").exists()
    assert not (project.root / "versions/MEMORY_VERSION.backup.20250714_170158").exists()


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` bind-mounted read-only onto itself (root only; skips otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    done = subprocess.run(["mount", "--bind", str(folder), str(folder)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount: {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.root
def test_a_failed_removal_is_a_warning(project: Project) -> None:
    """An original that cannot be removed (its folder read-only) is a warning line; the run
    succeeds, the other originals go."""
    legacy_tree(project)
    with read_only(project.root / "versions"):
        done = project.invoke("backups.migrate", "--remove-originals",
                              env={"GITHUB_ACTIONS": "true"})

    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "MEMORY_VERSION.backup.20250714_170158" in warnings[0]
    assert "Read-only" in warnings[0]
    assert any(line.startswith("::warning title=backups.migrate::")
               for line in done.stderr.splitlines())
    assert (project.root / "versions/MEMORY_VERSION.backup.20250714_170158").exists()
    assert not (project.target / "bin/tool.backup.20250714_170157").exists()


def test_an_executable_backup_on_path_is_warned_about(project: Project) -> None:
    """v0.7.5's claude-pm.backup.<ts> beside the scripts, 0755, with that folder on PATH, runs
    as a command: a warning line (and ::warning under GitHub Actions) until it is gone."""
    project.write({"target/bin/claude-pm.backup.20250714_111423": "#!/bin/sh\necho old\n",
                   "target/bin/cmpm.backup.20250714_111423": "#!/bin/sh\necho old\n"})
    (project.target / "bin/claude-pm.backup.20250714_111423").chmod(0o755)
    on_path = {"PATH": f"{project.target / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    listing = project.invoke("backups.legacy", "--json", env=on_path)
    off_path = project.invoke("backups.legacy")
    migrated = project.invoke("backups.migrate", env={**on_path, "GITHUB_ACTIONS": "true"})
    removed = project.invoke("backups.migrate", "--remove-originals", env=on_path)
    after = project.invoke("backups.legacy", env=on_path)

    warning = [line for line in listing.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "claude-pm.backup.20250714_111423" in warning[0]
    assert "PATH" in warning[0]
    assert "warning" not in off_path.stderr
    lines = migrated.stderr.splitlines()
    assert sum(line.startswith("warning: ") for line in lines) == 1
    assert sum(line.startswith("::warning title=backups.migrate::") for line in lines) == 1
    assert "warning" not in removed.stderr and "warning" not in after.stderr


def test_a_file_another_user_could_write_is_not_offered(project: Project) -> None:
    """A legacy file writable by group or others is listed, but not offered for migration."""
    project.write({"target/bin/tool.backup.20250714_170157": "#!/bin/sh\n"}, mode=0o666)

    found = listed(project)
    migrated = project.json("backups.migrate")

    (b,) = found.values()
    assert b["migratable"] is False and "writable by group or others" in str(b["reason"])
    assert migrated["changes"] == []


def test_dry_run_writes_nothing(project: Project, scratch_home: Path) -> None:
    """migrate --dry-run --remove-originals names what it would import and remove, and writes
    nothing: no tree, no lock, no original removed."""
    configure(project, ["target/parent1"])
    v080_tree(project.root, scratch_home)
    before = project.snapshot()

    doc = project.json("backups.migrate", "--dry-run", "--remove-originals")
    text = project.ok("backups.migrate", "--dry-run", "--remove-originals").stdout

    assert doc["schema_version"] == 1 and doc["dry_run"] is True
    assert len(doc["changes"]) == len(doc["would_remove"]) == 8
    assert "would import" in text and "would remove" in text
    assert project.snapshot() == before
    assert not project.state.exists()


def test_prefix_stages_the_home_location(project: Project, scratch_home: Path,
                                         tmp_path: Path) -> None:
    """Under --prefix the v0.8.0 script tree in ~/.local is read from the staged home, so a
    try-out never touches (or removes) the real one."""
    v080_tree(project.root, scratch_home)
    stage = tmp_path / "stage"
    staged = stage / str(scratch_home).lstrip("/") / ".local/.claude-pm/backups/scripts"
    write(staged, {"tool_backup_20250101_000000": b"staged\n"})

    doc = project.json("backups.legacy", f"--prefix={stage}")

    scripts = [b for b in doc["legacy"] if b["category"] == "scripts"]
    assert [Path(b["path"]).parent for b in scripts] == [staged]
