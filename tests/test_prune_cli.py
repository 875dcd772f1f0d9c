"""``backups.prune``, ``history.keep`` and ``backup.auto_prune`` through the CLI (issue 13,
"Retention"): every backup gets a verdict with its rule and reason, and what a promised
rollback needs survives the prune."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Project, assert_one_error_line

STRACE = shutil.which("strace")


def deploy(project: Project, version: int, name: str = "a") -> None:
    project.write({f"bin/{name}": f"#!/bin/sh\necho {name} {version}\n"})
    project.ok("deploy.scripts")


def verdicts(project: Project, *args: str) -> dict[int, dict[str, Any]]:
    return {b["id"]: b for b in project.json("backups.prune", *args)["backups"]}


def rules(project: Project) -> dict[int, str]:
    return {i: b["rule"] for i, b in verdicts(project, "--dry-run").items()}


def backup_ids(project: Project) -> list[int]:
    return sorted(b["id"] for b in project.json("backups.list")["backups"])


def target(project: Project, name: str = "a") -> str:
    return (project.target / "bin" / name).read_text()


def test_the_json_names_every_backup_with_its_verdict(project: Project) -> None:
    """Each backup has id, filename, action and reason (plus backup_id, rule, category,
    target, run, path); the text table has column headers and a summary line."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\n")
    for version in (1, 2, 3):
        deploy(project, version)

    found = project.json("backups.prune", "--dry-run")
    text = project.ok("backups.prune", "--dry-run").stdout.splitlines()

    assert found["dry_run"] is True
    assert {tuple(sorted(b)) for b in found["backups"]} == {
        ("action", "backup_id", "category", "filename", "id", "path", "reason", "rule", "run",
         "target")}
    assert [(b["action"], b["rule"]) for b in found["backups"]] == [
        ("remove", "too-many"), ("keep", "newest")]
    first = found["backups"][0]
    assert Path(first["path"]).name == first["filename"] and Path(first["path"]).is_file()
    assert "beyond max_backups_per_type" in first["reason"]
    assert text[0].split() == ["id", "action", "rule", "category", "file", "reason"]
    assert text[-1].startswith("would remove 1 of 2 backup(s); kept 1 (1 newest)")


def test_prune_keeps_the_step_back_rollbacks_it_promises(project: Project) -> None:
    """max_backups_per_type = 2 promises two step-back rollbacks: the third run back goes,
    and both promised rollbacks still restore their bytes after the prune."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 2\n")
    for version in (1, 2, 3, 4, 5):
        deploy(project, version)
    ids = backup_ids(project)

    found = verdicts(project)

    assert {i: b["rule"] for i, b in found.items()} == {
        ids[0]: "too-many", ids[1]: "too-many", ids[2]: "step-back", ids[3]: "newest"}
    assert backup_ids(project) == ids[2:]
    project.ok("rollback.scripts")
    assert target(project) == "#!/bin/sh\necho a 4\n"
    project.ok("rollback.scripts")
    assert target(project) == "#!/bin/sh\necho a 3\n"
    assert project.invoke("backups.verify").returncode == 0


def test_the_latest_not_undone_run_keeps_its_backup(project: Project) -> None:
    """After a rollback, the run the next step-back would undo keeps its backup even
    beyond the count; the rolled-back run's goes."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\n")
    for version in (1, 2, 3):
        deploy(project, version)
    project.ok("rollback.scripts")
    ids = backup_ids(project)

    found = verdicts(project)

    assert [found[i]["rule"] for i in ids] == ["latest", "too-many", "newest"]
    assert "latest not-undone run of scripts" in found[ids[0]]["reason"]
    project.ok("rollback.scripts")
    assert target(project) == "#!/bin/sh\necho a 1\n"


def test_too_old_goes_but_the_newest_stays(project: Project) -> None:
    """retention_days = 0: every backup but the newest of its target is too old."""
    project.configure("[tool.deploy.backup]\nretention_days = 0\n")
    for version in (1, 2, 3):
        deploy(project, version)

    found = verdicts(project)

    assert sorted(b["rule"] for b in found.values()) == ["newest", "too-old"]
    assert "older than retention_days" in next(b["reason"] for b in found.values()
                                               if b["rule"] == "too-old")
    assert len(backup_ids(project)) == 1


def test_a_kept_run_keeps_its_backups_until_the_mark_is_cleared(project: Project) -> None:
    """history.keep --run N: prune keeps its backup past count and age; history shows it;
    --off clears it and the next prune removes it."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\nretention_days = 0\n")
    for version in (1, 2, 3):
        deploy(project, version)
    first = backup_ids(project)[0]

    project.ok("history.keep", "--run", "2")
    history = project.json("history")["runs"]
    shown = project.ok("history").stdout
    kept = verdicts(project)

    assert [r["id"] for r in history if r["kept"]] == [2]
    assert "(kept)" in next(line for line in shown.splitlines() if line.split()[0] == "2")
    assert kept[first]["rule"] == "kept-run" and kept[first]["action"] == "keep"
    assert first in backup_ids(project)

    assert project.json("history.keep", "--run", "2", "--off")["kept"] is False
    assert verdicts(project)[first]["action"] == "remove"
    assert first not in backup_ids(project)


def test_history_keep_refuses_an_unknown_run(project: Project) -> None:
    """An unknown run is exit 2 with one error line naming it, and nothing written."""
    deploy(project, 1)
    before = project.snapshot()

    unknown = project.invoke("history.keep", "--run", "7")
    missing = project.invoke("history.keep")
    dry = project.ok("history.keep", "--run", "1", "--dry-run")

    assert unknown.returncode == 2
    assert_one_error_line(unknown.stderr, "no run 7")
    assert missing.returncode == 2
    assert_one_error_line(missing.stderr, "--run")
    assert dry.stdout.startswith("run 1: would be kept;")
    assert project.snapshot() == before


def test_category_tables_override_the_top_level_settings(project: Project) -> None:
    """[tool.deploy.backup.versions] max_backups_per_type = 3 against a top level of 1:
    versions keeps three step-back runs, scripts only its newest."""
    project.configure("""
        [tool.deploy.backup]
        max_backups_per_type = 1
        [tool.deploy.backup.versions]
        max_backups_per_type = 3
    """)
    project.write({"versions/MEMORY_VERSION": "001\n"})
    for version in (1, 2, 3):
        deploy(project, version)
    for _ in range(4):
        project.ok("versions.bump", "memory")

    found = verdicts(project, "--dry-run")

    by_category: dict[str, list[str]] = {}
    for b in sorted(found.values(), key=lambda b: b["id"]):
        by_category.setdefault(b["category"], []).append(b["rule"])
    assert by_category == {"scripts": ["too-many", "newest"],
                           "versions": ["too-many", "step-back", "step-back", "newest"]}
    assert "max 1 for scripts" in next(b["reason"] for b in found.values()
                                       if b["category"] == "scripts"
                                       and b["rule"] == "too-many")


@pytest.mark.parametrize(("extra", "needle"), [
    pytest.param("[tool.deploy.backup.bogus]\nretention_days = 1\n",
                 "unknown backup category tool.deploy.backup.bogus", id="unknown-category"),
    pytest.param("[tool.deploy.backup.scripts]\nkeep = 1\n",
                 "unknown key tool.deploy.backup.scripts.keep", id="unknown-key"),
    pytest.param("[tool.deploy.backup.scripts]\nretention_days = -1\n",
                 "tool.deploy.backup.scripts.retention_days must be from 0", id="range"),
    pytest.param("[tool.deploy.backup.framework]\nmax_backups_per_type = \"2\"\n",
                 "tool.deploy.backup.framework.max_backups_per_type must be an integer",
                 id="type"),
    pytest.param("[tool.deploy.backup]\nauto_prune = 1\n",
                 "tool.deploy.backup.auto_prune must be true or false", id="auto-prune-type"),
])
def test_bad_category_tables_are_config_errors(project: Project, extra: str,
                                               needle: str) -> None:
    project.configure(extra)

    done = project.invoke("backups.prune", "--dry-run")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, needle)


def test_auto_prune_applies_retention_after_every_run(project: Project) -> None:
    """With auto_prune, each deploy ends with a prune under its lock: the tree keeps only
    what retention keeps, and the run's JSON says what went."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\nauto_prune = true\n")
    for version in (1, 2, 3):
        deploy(project, version)
    before = backup_ids(project)

    project.write({"bin/a": "#!/bin/sh\necho a 4\n"})
    out = project.json("deploy.scripts")
    plain = project.invoke("deploy.scripts")

    assert len(before) == 1
    assert out["auto_prune"] == {"removed": before, "error": None}
    assert len(backup_ids(project)) == 1
    assert plain.returncode == 0 and "auto_prune" not in plain.stderr  # nothing changed
    assert project.invoke("backups.verify").returncode == 0


def test_auto_prune_off_leaves_the_backups(project: Project) -> None:
    """The default is off: deploys never remove a backup."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\n")
    for version in (1, 2, 3, 4):
        deploy(project, version)

    assert len(backup_ids(project)) == 3


@pytest.mark.skipif(not shutil.which("chattr"), reason="needs chattr (e2fsprogs)")
def test_a_failed_auto_prune_warns_and_the_run_stays_done(project: Project) -> None:
    """A backup that cannot be removed (immutable, a real EPERM): the deploy exits 0 with
    a warning naming the file, its run is done, and the backup is still vouched for."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\n")
    for version in (1, 2, 3):
        deploy(project, version)
    doomed = project.json("backups.list")["backups"][-1]
    lock = subprocess.run(["chattr", "+i", doomed["path"]], capture_output=True, check=False)
    if lock.returncode != 0:
        pytest.skip(f"chattr +i fails here: {lock.stderr!r}")
    try:
        project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\nauto_prune = true\n")
        project.write({"bin/a": "#!/bin/sh\necho a 4\n"})

        done = project.invoke("deploy.scripts", "--json")
        verify = project.invoke("backups.verify")
    finally:
        subprocess.run(["chattr", "-i", doomed["path"]], check=True)

    assert done.returncode == 0, done.stderr
    assert "warning: run 4 is done and stays done, but auto_prune failed" in done.stderr
    assert doomed["path"] in done.stderr
    assert "Operation not permitted" in done.stderr
    assert project.json("history")["runs"][0]["state"] == "done"
    assert doomed["id"] in backup_ids(project)
    assert verify.returncode == 0, verify.stdout


def fail_deploy(project: Project, version: int, how: str, when: int = 2) -> None:
    """A deploy that fails (EIO) or is killed (SIGKILL) at the target's rename (the
    ``when``-th rename), after its backup is in the tree: a real failed or interrupted run."""
    project.write({"bin/a": f"#!/bin/sh\necho a {version}\n"})
    assert STRACE is not None
    inject = "error=EIO" if how == "failed" else "signal=SIGKILL"
    env = {**os.environ, "DEPLOY_CONFIG": str(project.config_path), **project.env}
    done = subprocess.run([STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
                           "-e", f"inject=rename:{inject}:when={when}", sys.executable, "-m",
                           "invoke", "--search-root", str(REPO), "deploy.scripts"],
                          cwd=project.root, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode != 0, done.stdout


@pytest.mark.skipif(STRACE is None, reason="needs strace")
def test_failed_and_interrupted_runs_do_not_use_up_the_count(project: Project) -> None:
    """Two failed runs and a killed one add three backups of the target, newer than a
    rollback's: with max_backups_per_type = 2 the rollback's backup still is within the
    count, and theirs are kept without counting."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 2\n")
    deploy(project, 1)
    deploy(project, 2)
    project.ok("rollback.scripts")     # run 3 undoes run 2: its backup holds a 2
    deploy(project, 3)                 # run 4, the latest not-undone run
    # Each failure leaves the target holding a 3 again; from the second on, its backup is a
    # hard link to the first's (dedupe: no rename), so the target's rename is the first.
    for version, how, when in ((4, "failed", 2), (5, "failed", 1), (6, "killed", 1)):
        fail_deploy(project, version, how, when)
    ids = backup_ids(project)

    found = verdicts(project)  # its session records the killed run as interrupted first

    states = [r["state"] for r in project.json("history")["runs"]]
    assert states[:3] == ["interrupted", "failed", "failed"]
    rollback_backup = found[ids[1]]
    assert rollback_backup["run"] == 3 and rollback_backup["rule"] == "within"
    assert [found[i]["rule"] for i in ids] == ["too-many", "within", "latest", "within",
                                               "within", "newest"]
    assert all("does not use up the count" in found[i]["reason"] for i in ids[3:5])
    assert backup_ids(project) == ids[1:]
    project.ok("rollback.scripts", "--to", str(ids[1]))
    assert target(project) == "#!/bin/sh\necho a 2\n"


def test_auto_prune_follows_a_rollback_too(project: Project) -> None:
    """A rollback is a writing run: with auto_prune its session prunes too, keeping the
    backup the next step-back needs, and its --json says what went."""
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\n")
    for version in (1, 2, 3, 4):
        deploy(project, version)
    project.configure("[tool.deploy.backup]\nmax_backups_per_type = 1\nauto_prune = true\n")

    out = project.json("rollback.scripts")

    assert out["auto_prune"]["error"] is None and len(out["auto_prune"]["removed"]) == 2
    project.ok("rollback.scripts")
    assert target(project) == "#!/bin/sh\necho a 2\n"


def test_framework_rotation_keeps_what_step_back_needs(project: Project) -> None:
    """framework_keep = 2 keeps the newest two framework backups, but after a rollback
    those are not the two the next two rollbacks need: the rotation keeps the step-back
    run's too, so both rollbacks still restore their bytes."""
    fw = project.target / "framework" / "CLAUDE.md"
    for version in (0, 1, 2):
        project.write({"tpl/CLAUDE.md": f"# fw {version}\n"})
        project.ok("deploy.framework")
    project.ok("rollback.framework")            # undoes fw 2: fw 1 is back
    project.write({"tpl/CLAUDE.md": "# fw 3\n"})

    out = project.json("deploy.framework")

    assert len(out["rotated"]) == 1             # fw 2's backup went, not fw 1's
    project.ok("rollback.framework")
    assert fw.read_text() == "# fw 1\n"
    project.ok("rollback.framework")
    assert fw.read_text() == "# fw 0\n"
