"""Compressed and deduplicated backups through the real CLI (issue 13, "Compression" and
"Dedupe"): what prune compresses, restores by the CLI and by hand (``zstd -d``, ``cp``),
verify through zstd, hard links and what removing one name leaves, a hard link from
outside the tree refused, and reindex of a tree holding ``.zst`` files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Project, assert_one_error_line

COMPRESS = """
[tool.deploy.backup]
compression_enabled = true
compress_after_days = {days}
"""
needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")


def version(k: int) -> bytes:
    """Script version ``k``: a few KiB of text that compresses well, distinct per ``k``."""
    return b"#!/bin/sh\n" + b"".join(b"echo line %d of version %d\n" % (i, k)
                                     for i in range(200))


def deploy(project: Project, *versions: int) -> None:
    for k in versions:
        project.write({"bin/tool": version(k)})
        project.ok("deploy.scripts")


def backups(project: Project) -> dict[int, dict[str, object]]:
    """``backups.list --json`` by id."""
    return {int(b["id"]): b for b in project.json("backups.list")["backups"]}


def set_created(project: Project, seq: int, days_ago: float) -> None:
    """Age one backup in the index (the only clock prune reads)."""
    when = time.time() - days_ago * 86400
    with sqlite3.connect(project.tree / "index.sqlite") as db:
        db.execute("UPDATE changes SET created_ts = ? WHERE seq = ?", (when, seq))
    db.close()


def test_prune_compresses_all_but_the_newest_into_standard_zstd_frames(
        project: Project) -> None:
    """With compress_after_days = 0, prune stores every backup but the newest of its target
    as ``<name>.zst`` (0600), the newest stays plain; list, status and verify read them."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3, 4)
    before = backups(project)

    doc = project.json("backups.prune")

    after = backups(project)
    assert sorted(after) == sorted(before) == [2, 3, 4]
    assert [c["id"] for c in doc["compressed"]] == [2, 3]
    assert {c["outcome"] for c in doc["compressed"]} == {"compressed"}
    for seq in (2, 3):
        path = Path(str(after[seq]["path"]))
        assert path.name == Path(str(before[seq]["path"])).name + ".zst"
        assert not Path(str(before[seq]["path"])).exists()
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.stat().st_size < int(str(after[seq]["size"])) // 4
        assert after[seq]["sha256"] == before[seq]["sha256"]
    assert after[4]["path"] == before[4]["path"]
    assert {v["action"] for v in doc["backups"] if v["id"] in (2, 3)} == {"compress"}
    assert project.json("backups.verify")["problems"] == []


@needs_zstd
def test_zstd_d_restores_a_compressed_backup_by_hand(project: Project, tmp_path: Path
                                                     ) -> None:
    """The ``.zst`` is a standard frame with its content size and checksum: ``zstd -d``
    writes back the original bytes, and ``zstd -l`` reports the checksum."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3)
    project.ok("backups.prune")
    path = Path(str(backups(project)[2]["path"]))

    out = tmp_path / "restored"
    subprocess.run(["zstd", "-q", "-d", str(path), "-o", str(out)], check=True)
    info = subprocess.run(["zstd", "-lv", str(path)], capture_output=True, text=True,
                          check=True).stdout
    import zstandard

    frame = zstandard.get_frame_parameters(path.read_bytes())

    assert out.read_bytes() == version(1)
    assert "XXH64" in info
    assert (frame.content_size, frame.has_checksum) == (len(version(1)), True)


def test_rollback_restores_through_zstd_step_back_and_to(project: Project) -> None:
    """Step-back rollbacks and ``--to`` restore compressed backups byte for byte, with the
    target's mode."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3)
    project.ok("backups.prune")
    target = project.target / "bin" / "tool"

    project.ok("rollback.scripts")
    assert target.read_bytes() == version(2)
    project.ok("rollback.scripts")
    assert target.read_bytes() == version(1)
    assert target.stat().st_mode & 0o777 == 0o755
    project.ok("rollback.scripts", "--to", "3")
    assert target.read_bytes() == version(2)


def test_compress_after_days_reads_the_index_times_not_mtimes(project: Project) -> None:
    """compress_after_days = 1: nothing is due while the index says the backups are new,
    whatever their files' mtimes say; aged in the index, they are compressed."""
    project.configure(COMPRESS.format(days=1))
    deploy(project, 1, 2, 3)
    for b in backups(project).values():
        os.utime(str(b["path"]), (0, 0))  # 1970: mtimes must not count

    first = project.json("backups.prune")
    set_created(project, 2, 2.0)
    second = project.json("backups.prune")

    assert first["compressed"] == []
    assert [c["id"] for c in second["compressed"]] == [2]
    assert str(backups(project)[2]["path"]).endswith(".zst")
    assert not str(backups(project)[3]["path"]).endswith(".zst")


def test_verify_through_zstd_finds_a_corrupt_frame_and_rollback_refuses_it(
        project: Project) -> None:
    """A flipped byte inside a ``.zst`` is ``corrupt`` for verify (exit 1, naming it), and a
    rollback to it restores nothing (exit 1)."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3)
    project.ok("backups.prune")
    path = Path(str(backups(project)[2]["path"]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    target = project.target / "bin" / "tool"

    verify = project.invoke("backups.verify", "--json")
    rollback = project.invoke("rollback.scripts", "--to", "2")

    assert verify.returncode == 1
    problems = json.loads(verify.stdout)["problems"]
    assert [(p["kind"], p["path"], p["backup_id"]) for p in problems] == [("corrupt", str(path), 2)]
    assert rollback.returncode == 1
    assert_one_error_line(rollback.stderr, str(path), "corrupt")
    assert target.read_bytes() == version(3)


@pytest.mark.parametrize("damage", ["flipped-byte", "other-content"])
def test_without_integrity_checking_the_write_still_refuses_other_bytes(
        project: Project, damage: str) -> None:
    """A compressed restore decompresses as it writes (a chunk in memory, not the file) and
    hashes what it wrote before the temp file gets its mode: with integrity_checking off, a
    broken frame or a valid frame of other bytes still restores nothing (exit 1)."""
    import zstandard

    project.configure(COMPRESS.format(days=0) + "integrity_checking = false\n")
    deploy(project, 1, 2, 3)
    project.ok("backups.prune")
    path = Path(str(backups(project)[2]["path"]))
    if damage == "flipped-byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(version(9)))
    target = project.target / "bin" / "tool"

    rollback = project.invoke("rollback.scripts", "--to", "2")

    assert rollback.returncode == 1, rollback
    assert_one_error_line(rollback.stderr, str(path),
                          "not a valid zstd frame" if damage == "flipped-byte" else "sha256")
    assert target.read_bytes() == version(3)
    assert not [p for p in target.parent.iterdir() if p.name != "tool"]
    assert project.json("history")["runs"][0]["state"] == "failed"


def test_equal_backups_are_hard_links_and_cp_restores_each(project: Project,
                                                            tmp_path: Path) -> None:
    """Deploying 1, 2, 1, 2, 1 leaves four backups in two files: each repeat is a hard link
    to the backup of the same bytes (every name a regular 0600 file that ``cp`` restores),
    and status counts each inode once."""
    deploy(project, 1, 2, 1, 2, 1)
    listed = backups(project)
    paths = {seq: Path(str(b["path"])) for seq, b in listed.items()}

    status = project.json("backups.status")["categories"]["scripts"]

    assert sorted(listed) == [2, 3, 4, 5]
    assert os.path.samefile(paths[2], paths[4]) and os.path.samefile(paths[3], paths[5])
    assert not os.path.samefile(paths[2], paths[3])
    assert paths[2].stat().st_nlink == 2
    for seq, expected in ((2, 1), (3, 2), (4, 1), (5, 2)):
        shutil.copy(paths[seq], tmp_path / "by-hand")
        assert (tmp_path / "by-hand").read_bytes() == version(expected)
    assert status["logical_bytes"] == 2 * len(version(1)) + 2 * len(version(2))
    assert status["physical_bytes"] == len(version(1)) + len(version(2))
    assert project.json("backups.verify")["problems"] == []


def test_pruning_one_linked_name_keeps_the_other_restorable(project: Project) -> None:
    """Of two names of one file, prune removes the older (retention_days = 0): the newer
    keeps the bytes, verify is clean, and the rollback that needs it restores them."""
    project.configure("\n[tool.deploy.backup]\nretention_days = 0\n")
    deploy(project, 1, 2, 1, 2, 1)
    listed = backups(project)
    older, newer = Path(str(listed[3]["path"])), Path(str(listed[5]["path"]))
    assert os.path.samefile(older, newer)

    doc = project.json("backups.prune")

    assert 3 in {r["id"] for r in doc["pruned"]} and 5 not in {r["id"] for r in doc["pruned"]}
    assert not older.exists() and newer.read_bytes() == version(2)
    assert newer.stat().st_nlink == 1
    assert project.json("backups.verify")["problems"] == []
    project.ok("rollback.scripts")
    assert (project.target / "bin" / "tool").read_bytes() == version(2)


def test_a_compressed_and_a_plain_copy_of_equal_bytes_and_links_among_zst(
        project: Project) -> None:
    """The newest backup stays plain even when a ``.zst`` of its bytes exists (``cp`` must
    restore it); once compressed too, its ``.zst`` name links to the existing frame."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3, 1, 2)  # backups 2 (v1), 3 (v2), 4 (v3), 5 (v1, a link to 2)
    project.ok("backups.prune")     # 2, 3 and 4 compressed; 5, the newest, stays plain
    deploy(project, 3)              # backup 6 holds v2: a plain copy, the newest
    listed = backups(project)
    assert str(listed[3]["path"]).endswith(".zst")
    assert not str(listed[6]["path"]).endswith(".zst")

    deploy(project, 4)              # backup 7 is the newest now
    doc = project.json("backups.prune")

    outcomes = {c["id"]: c["outcome"] for c in doc["compressed"]}
    listed = backups(project)
    assert (outcomes[5], outcomes[6]) == ("linked", "linked")
    assert os.path.samefile(str(listed[6]["path"]), str(listed[3]["path"]))
    assert os.path.samefile(str(listed[5]["path"]), str(listed[2]["path"]))
    assert project.json("backups.verify")["problems"] == []


def test_a_hard_link_to_a_file_outside_the_tree_is_refused(project: Project) -> None:
    """A backup name replaced by a hard link to a file outside the tree (same bytes, ours,
    0600: every other check passes) is not trusted: verify names it, a rollback to it exits
    1, and a new backup of those bytes is a copy, not another link to it."""
    deploy(project, 1, 2)
    path = Path(str(backups(project)[2]["path"]))
    outside = project.root / "outside"
    outside.write_bytes(version(1))
    outside.chmod(0o600)
    path.unlink()
    os.link(outside, path)

    verify = project.invoke("backups.verify")
    rollback = project.invoke("rollback.scripts", "--to", "2")
    deploy(project, 1, 2)  # backup 3 holds v2, backup 4 holds v1 again
    again = Path(str(backups(project)[4]["path"]))

    assert verify.returncode == 1 and "hard links" in verify.stdout
    assert rollback.returncode == 1
    assert_one_error_line(rollback.stderr, str(path), "hard links")
    assert again.read_bytes() == version(1)
    assert again.stat().st_nlink == 1 and outside.stat().st_nlink == 2


def test_reindex_records_compressed_backups_and_rollback_restores_them(
        project: Project) -> None:
    """After the index is lost, reindex records each ``.zst`` under its contract name as
    compressed (hash of the original bytes) and ``--to`` restores it."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3, 4)
    project.ok("backups.prune")
    (project.tree / "index.sqlite").unlink()

    doc = project.json("backups.reindex")
    listed = {Path(str(b["path"])).name: b for b in backups(project).values()}

    zst = [name for name in listed if name.endswith(".zst")]
    assert len(doc["changes"]) == 3 and len(zst) == 2
    seq = next(int(str(b["id"])) for name, b in listed.items()
               if name.endswith(".zst")
               and b["sha256"] == hashlib.sha256(version(1)).hexdigest())
    project.ok("rollback.scripts", "--to", str(seq))
    assert (project.target / "bin" / "tool").read_bytes() == version(1)
    assert project.json("backups.verify")["problems"] == []


def test_compression_follows_no_symlink_planted_for_a_backup(project: Project) -> None:
    """A backup replaced by a symlink to a file elsewhere is not compressed (a warning
    names it, the rest are): the link's victim is untouched and no .zst holds its bytes."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3, 4)
    path = Path(str(backups(project)[2]["path"]))
    victim = project.root / "victim"
    victim.write_bytes(b"secret\n")
    victim.chmod(0o600)
    path.unlink()
    path.symlink_to(victim)

    done = project.invoke("backups.prune", "--json")

    doc = json.loads(done.stdout)
    outcomes = {c["id"]: c["outcome"] for c in doc["compressed"]}
    assert done.returncode == 0, done.stderr
    assert outcomes == {2: "skipped", 3: "compressed"}
    assert f"warning: {path}" in done.stderr and "symlink" in done.stderr
    assert path.is_symlink() and victim.read_bytes() == b"secret\n"
    assert not path.with_name(path.name + ".zst").exists()


def test_prune_tidies_what_a_cut_short_compression_left_even_with_nothing_due(
        project: Project) -> None:
    """A plain file beside the .zst its row records (a kill after the commit) and a .zst
    beside the plain file its row still vouches for (a kill before it) are orphans to
    verify, named as such; the next prune removes both though nothing else is due, and
    the bytes stay where the index says."""
    project.configure(COMPRESS.format(days=0))
    deploy(project, 1, 2, 3)
    project.ok("backups.prune")
    listed = backups(project)
    compressed, plain = Path(str(listed[2]["path"])), Path(str(listed[3]["path"]))
    left_plain = compressed.with_name(compressed.name.removesuffix(".zst"))
    left_plain.write_bytes(version(1))
    left_plain.chmod(0o600)
    import zstandard

    left_zst = plain.with_name(plain.name + ".zst")
    left_zst.write_bytes(zstandard.ZstdCompressor().compress(version(2)))
    left_zst.chmod(0o600)

    before = project.invoke("backups.verify", "--json")
    project.ok("backups.prune")

    kinds = {p["path"]: (p["kind"], p["detail"]) for p in json.loads(before.stdout)["problems"]}
    assert before.returncode == 1
    assert kinds[str(left_plain)][0] == kinds[str(left_zst)][0] == "orphan"
    assert "cut short" in kinds[str(left_plain)][1] and "cut short" in kinds[str(left_zst)][1]
    assert not left_plain.exists() and not left_zst.exists()
    assert compressed.exists() and plain.read_bytes() == version(2)
    assert project.json("backups.verify")["problems"] == []


def test_auto_prune_compresses_after_each_run(project: Project) -> None:
    """With backup.auto_prune, every writing run ends with retention, compression included:
    after three deploys the older backup is a .zst without any prune."""
    project.configure(COMPRESS.format(days=0) + "auto_prune = true\n")
    deploy(project, 1, 2, 3)

    listed = backups(project)

    assert str(listed[2]["path"]).endswith(".zst")
    assert not str(listed[3]["path"]).endswith(".zst")
    assert project.json("backups.verify")["problems"] == []
