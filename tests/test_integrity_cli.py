"""``backups.verify`` and ``backups.reindex`` through the real CLI: their JSON, the sample,
the recorded last verify, the lock, the refusal over a healthy index, and the dry run.
(Each kind of damage, and kills during a reindex, are in tests/reliability/test_integrity.py.)"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

from deploy.store import Store, last_verify
from tests.conftest import Project, assert_one_error_line


def script(version: str) -> str:
    return f"#!/bin/sh\necho {version}\n"


def two_backups(project: Project) -> list[Path]:
    """Scripts ``one`` and ``two`` deployed twice: two backups; their paths."""
    project.write({"bin/one": script("one 1"), "bin/two": script("two 1")})
    project.ok("deploy.scripts")
    project.write({"bin/one": script("one 2"), "bin/two": script("two 2")})
    return [Path(c["backup"]) for c in project.json("deploy.scripts")["changes"]]


def test_verify_json_carries_its_schema_and_records_the_last_verify(project: Project) -> None:
    """A clean verify prints schema_version, checked and an empty problems list, and leaves
    its outcome in the index for the status task."""
    two_backups(project)

    doc = project.json("backups.verify")

    assert doc["schema_version"] == 1
    assert (doc["checked"], doc["vouched"], doc["sample"], doc["problems"]) == (2, 2, None, [])
    with Store(project.state).reading() as index:
        assert index is not None
        recorded = last_verify(index)
    assert recorded is not None and recorded["finished"] == doc["recorded"]
    assert (recorded["ok"], recorded["checked"], recorded["problems"]) == (True, 2, 0)


def test_sample_one_checks_one(project: Project) -> None:
    """``--sample 1`` re-hashes one backup of the two the index vouches for."""
    two_backups(project)

    doc = project.json("backups.verify", "--sample", "1")
    text = project.ok("backups.verify", "--sample", "1").stdout

    assert (doc["checked"], doc["vouched"], doc["sample"]) == (1, 2, 1)
    assert text.startswith("checked 1 of 2 (a random sample) backup(s): no problem(s)")


def test_a_problem_is_named_in_json_text_and_the_error_line(project: Project) -> None:
    """Each problem has kind, path, backup_id, detail and message (the one-line text verify always
    printed); the text output and the error line name it too."""
    backup = two_backups(project)[0]
    backup.unlink()

    done = project.invoke("backups.verify", "--json")

    assert done.returncode == 1
    (problem,) = json.loads(done.stdout)["problems"]
    assert problem["kind"] == "missing" and problem["path"] == str(backup)
    assert problem["message"] == f"{backup}: backup {problem['backup_id']} is missing"
    assert_one_error_line(done.stderr, problem["message"])


def test_verify_waits_for_the_lock_of_a_healthy_index(project: Project) -> None:
    """Over a healthy index verify holds the lock: another run holding it means exit 4."""
    two_backups(project)
    fd = os.open(project.tree / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = project.invoke("backups.verify")
    finally:
        os.close(fd)

    assert done.returncode == 4
    assert_one_error_line(done.stderr, str(project.tree / "lock"), "another run holds")


def test_reindex_refuses_a_healthy_index(project: Project) -> None:
    """With a healthy index holding runs, reindex exits 2 naming it and writes nothing."""
    two_backups(project)
    before = project.snapshot()

    done = project.invoke("backups.reindex")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, str(project.tree / "index.sqlite"), "--force")
    assert project.snapshot() == before


def test_reindex_force_records_only_what_the_index_does_not_hold(project: Project) -> None:
    """``--force`` over a healthy index records just the tree's files no row holds, once."""
    backup = two_backups(project)[0]
    copy = backup.with_name("one_backup_20200101_000000")
    shutil.copy2(backup, copy)

    first = project.json("backups.reindex", "--force")
    again = project.ok("backups.reindex", "--force")
    check = project.json("backups.verify")

    assert [(c["backup"], c["target"], c["key"]) for c in first["changes"]] == [
        (str(copy), str(project.target / "bin" / "one"), "one")]
    assert again.stdout.startswith("nothing to record: the index holds every file")
    assert check["problems"] == [] and check["checked"] == 3


def test_reindex_dry_run_writes_nothing_and_says_what_it_would(project: Project) -> None:
    """After the index was lost, a dry run lists what it would record and writes nothing."""
    backups = two_backups(project)
    (project.tree / "index.sqlite").unlink()
    project.write({"state/backups/scripts/notes.txt": "by hand\n"})
    before = project.snapshot()

    text = project.ok("backups.reindex", "--dry-run").stdout
    doc = project.json("backups.reindex", "--dry-run")

    assert project.snapshot() == before
    assert "would record 2 backup(s) in one reindex run" in text
    assert sorted(c["backup"] for c in doc["changes"]) == sorted(map(str, backups))
    assert (doc["run"], doc["dry_run"], doc["index"]) == (None, True, "absent")
    assert doc["unrecorded"] == [{"path": str(project.tree / "scripts" / "notes.txt"),
                                  "reason": "not a backup name of scripts "
                                            "(<name>_backup_YYYYmmdd_HHMMSS[_NN])"}]


def test_reindexed_backups_are_never_picked_by_a_step_back(project: Project) -> None:
    """Reindexed rows are ``imported``: listed and restorable with --to, but a plain
    rollback has nothing to step back to, and history shows one reindex run."""
    two_backups(project)
    (project.tree / "index.sqlite").unlink()
    doc = project.json("backups.reindex")

    step = project.ok("rollback.scripts")
    runs = project.json("history")["runs"]

    assert "nothing to roll back" in step.stdout
    assert [(r["kind"], r["state"], r["changed"]) for r in runs] == [("reindex", "done", 0)]
    assert len(project.json("backups.list")["backups"]) == len(doc["changes"]) == 2


def test_a_template_no_longer_configured_is_reported(project: Project) -> None:
    """A backup of a template id the config no longer names is reported, not recorded."""
    project.write({"tpl/a.j2": "a 1\n"})
    project.configure('[[tool.deploy.templates]]\nid = "a"\nsource = "tpl/a.j2"\n'
                      'target = "target/a"\n')
    project.ok("deploy.templates")
    project.write({"tpl/a.j2": "a 2\n"})
    project.ok("deploy.templates")
    project.configure()
    (project.tree / "index.sqlite").unlink()

    doc = project.json("backups.reindex")

    assert doc["changes"] == [] and doc["run"] is None
    (unrecorded,) = doc["unrecorded"]
    assert "no configured target for templates 'a'" in unrecorded["reason"]


def test_reindex_writes_its_step_summary_under_actions(project: Project, tmp_path: Path) -> None:
    """Under GitHub Actions a reindex appends its run and the backups it recorded to the
    step summary, like every writing task."""
    two_backups(project)
    (project.tree / "index.sqlite").unlink()
    summary = tmp_path / "summary.md"

    project.ok("backups.reindex", env={"GITHUB_ACTIONS": "true",
                                       "GITHUB_STEP_SUMMARY": str(summary)})

    text = summary.read_text()
    assert text.startswith("### backups.reindex: run 1")
    assert text.count("| import |") == 2
