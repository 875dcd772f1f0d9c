"""``backups.status`` (issue 13, "Status"): per category the logical and physical bytes, the
compressed count, the oldest and newest backup; for the tree the bytes on disk, the last
verify, the lock's holder and the legacy backups found; text and ``--json``."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from tests.conftest import Project
from tests.test_compress_cli import COMPRESS, backups, deploy, version


def test_status_counts_logical_and_physical_bytes_and_compressed(project: Project) -> None:
    """Logical bytes sum the original sizes; physical bytes are what lies on disk, each
    inode once (a hard link is free, a .zst counts its own size); oldest and newest are the
    category's first and last backup."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 1, 3)   # backups 2 (v1), 3 (v2), 4 (v1: a link to 2)
    project.ok("backups.prune")   # 2 and 3 compressed; 4, the newest, stays plain
    listed = backups(project)
    files = {os.stat(str(b["path"])).st_ino: os.stat(str(b["path"])).st_size
             for b in listed.values()}

    doc = project.json("backups.status")
    scripts = doc["categories"]["scripts"]
    text = project.ok("backups.status").stdout

    assert scripts["backup_count"] == 3
    assert scripts["logical_bytes"] == 2 * len(version(1)) + len(version(2))
    assert scripts["physical_bytes"] == sum(files.values()) == doc["physical_bytes"]
    assert scripts["physical_bytes"] < len(version(1)) + 1000
    assert scripts["compressed_count"] == 2
    created = sorted(str(b["created"]) for b in listed.values())
    assert (scripts["oldest"], scripts["newest"]) == (created[0], created[-1])
    assert doc["categories"]["versions"]["logical_bytes"] == 0
    assert "2 compressed" in text and "logical" in text


def test_status_shows_the_last_verify(project: Project) -> None:
    """Never verified: null; after a clean verify its time and ok; after one that found a
    problem, not ok with the count."""
    deploy(project, 1, 2, 3)
    never = project.json("backups.status")["last_verify"]
    clean = project.json("backups.verify")
    after_clean = project.json("backups.status")["last_verify"]
    Path(str(backups(project)[2]["path"])).write_bytes(b"garbage")
    project.invoke("backups.verify")

    after_bad = project.json("backups.status")["last_verify"]
    text = project.ok("backups.status").stdout

    assert never is None
    assert after_clean == {"finished": clean["recorded"], "ok": True, "problems": 0}
    assert (after_bad["ok"], after_bad["problems"]) == (False, 1)
    assert "last verify: " in text and "1 problem(s)" in text


def test_status_names_the_lock_holder_without_taking_the_lock(project: Project) -> None:
    """While another process holds the lock, status (which takes no lock) names its pid,
    command and start time; once it lets go, the lock is free."""
    deploy(project, 1, 2)
    lock = project.tree / "lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = {"pid": os.getpid(), "command": "invoke deploy", "started": "2026-12-01T10:00"}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        held = project.json("backups.status")["lock_holder"]
        text = project.ok("backups.status").stdout
    finally:
        os.close(fd)

    free = project.json("backups.status")["lock_holder"]

    assert held == info
    assert f"lock: held by pid {os.getpid()} ('invoke deploy'" in text
    assert free is None


def test_status_counts_the_legacy_backups(project: Project) -> None:
    """A v0.7.5 script backup beside the deployed script counts as one legacy backup."""
    deploy(project, 1)
    before = project.json("backups.status")["legacy_backups"]
    project.write({"target/bin/tool.backup.20250714_111423": version(0)})

    doc = project.json("backups.status")
    text = project.ok("backups.status").stdout

    assert (before, doc["legacy_backups"]) == (0, 1)
    assert "legacy backups: 1 in the old locations" in text
