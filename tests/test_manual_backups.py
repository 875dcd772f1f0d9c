"""``backups.create``: the guide's on-demand backup, through the CLI."""

from __future__ import annotations

import json

from tests.conftest import Project


def test_a_manual_backup_restores_with_to(project: Project) -> None:
    """A hand-edited script backed up by backups.create comes back byte for byte with
    rollback.scripts --to ID after a deploy replaced it; the run is a `backup` run."""
    project.write({"bin/tool": "#!/bin/sh\necho 1\n", "bin/other": "#!/bin/sh\n"})
    project.ok("deploy.scripts")
    target = project.target / "bin" / "tool"
    target.write_text("#!/bin/sh\necho tuned by hand\n")

    made = json.loads(project.ok("backups.create", "--name", "tool", "--json").stdout)
    again = project.ok("backups.create", "--name", "tool").stdout
    project.ok("deploy.scripts")
    project.ok("rollback.scripts", f"--to={made['changes'][0]['backup_id']}")

    assert [c["target"] for c in made["changes"]] == [str(target)]
    assert again.startswith("nothing to back up")
    assert target.read_text() == "#!/bin/sh\necho tuned by hand\n"
    kinds = [r["kind"] for r in json.loads(project.ok("history", "--json").stdout)["runs"]]
    assert "backup" in kinds


def test_a_dry_run_lists_every_configured_target_and_writes_nothing(project: Project) -> None:
    """backups.create --dry-run names each existing configured target; nothing is written."""
    project.write({"bin/tool": "#!/bin/sh\n", "versions/MEMORY_VERSION": "003\n"})
    project.ok("deploy.scripts")
    before = project.snapshot()

    out = project.ok("backups.create", "--dry-run").stdout

    assert f"would back up {project.target / 'bin' / 'tool'}" in out
    assert f"would back up {project.root / 'versions' / 'MEMORY_VERSION'}" in out
    assert project.snapshot() == before


def test_debug_log_shows_each_step_on_stderr(project: Project) -> None:
    """DEPLOY_LOG=debug prints each backup attempt, folder, write and the run's end to
    stderr as debug lines; stdout is unchanged."""
    project.write({"bin/tool": "#!/bin/sh\necho 1\n"})
    quiet = project.ok("deploy.scripts")
    project.write({"bin/tool": "#!/bin/sh\necho 2\n"})

    loud = project.ok("deploy.scripts", env={"DEPLOY_LOG": "debug"})

    lines = loud.stderr.splitlines()
    assert all(line.startswith("debug: ") for line in lines), loud.stderr
    assert any("backing up" in line and "tool" in line for line in lines)
    assert any(line.startswith("debug: writing") for line in lines)
    assert any("done: 1 change(s)" in line for line in lines)
    assert quiet.stderr == ""


def test_a_manual_backup_of_bytes_the_tree_holds_is_a_hard_link(project: Project) -> None:
    """After a rollback the target holds bytes a deploy's backup holds already: the manual
    backup is a hard link to that verified file (dedupe, as for a deploy's backups), the
    index says it shares it, verify is clean and ``--to`` restores it."""
    import os
    from pathlib import Path

    project.write({"bin/tool": "#!/bin/sh\necho 1\n"})
    project.ok("deploy.scripts")
    project.write({"bin/tool": "#!/bin/sh\necho 2\n"})
    project.ok("deploy.scripts")
    project.ok("rollback.scripts")  # the target holds version 1 again
    listed = {b["id"]: b for b in project.json("backups.list")["backups"]}

    made = project.json("backups.create", "--name", "tool")
    copy = Path(made["changes"][0]["backup"])
    first = Path(str(listed[2]["path"]))  # deploy 2's backup of version 1

    assert copy.stat().st_ino == first.stat().st_ino and copy.stat().st_nlink == 2
    assert os.stat(copy).st_mode & 0o777 == 0o600
    status = project.json("backups.status")["categories"]["scripts"]
    assert status["logical_bytes"] - status["physical_bytes"] == len("#!/bin/sh\necho 1\n")
    project.ok("backups.verify")
    project.write({"bin/tool": "#!/bin/sh\necho 3\n"})
    project.ok("deploy.scripts")
    project.ok("rollback.scripts", f"--to={made['changes'][0]['backup_id']}")
    assert (project.target / "bin" / "tool").read_text() == "#!/bin/sh\necho 1\n"
