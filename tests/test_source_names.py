"""Names that come from the scripts folder are checked like names given with --name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, Project, assert_one_error_line


@pytest.mark.parametrize("name", [
    pytest.param("-rf", id="leading-dash"),
    pytest.param(os.fsdecode(b"caf\xe9"), id="not-utf8"),
    pytest.param("x" * 191, id="191-bytes"),
])
@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
def test_a_bad_file_name_in_the_scripts_folder_stops_the_run(project: Project, name: str,
                                                             dry: bool) -> None:
    """A file whose name would be refused on the command line stops the run (and the dry
    run, with the same message) with exit 2, naming it escaped; nothing is written."""
    project.write({"bin/good": "#!/bin/sh\n"})
    (project.root / "bin" / name).write_bytes(b"#!/bin/sh\necho hi\n")

    done = project.invoke("deploy.scripts", *(["--dry-run"] if dry else []))

    assert done.returncode == 2, done.stderr
    assert_one_error_line(done.stderr, str(project.root / "bin"))
    assert "\\xe9" in done.stderr or "-rf" in done.stderr or "191 bytes" in done.stderr
    assert not project.target.exists()
    assert not (project.tree / "index.sqlite").exists()


def test_a_longest_name_deploys_backs_up_and_rolls_back(project: Project) -> None:
    """A 190-byte script name (the longest allowed) deploys, is backed up on the next
    deploy with a counter in the same second, and rolls back."""
    name = "n" * 190
    project.write({f"bin/{name}": "#!/bin/sh\necho 1\n"})
    project.ok("deploy.scripts")
    for k in (2, 3):
        project.write({f"bin/{name}": f"#!/bin/sh\necho {k}\n"})
        project.ok("deploy.scripts")

    project.ok("rollback.scripts")

    assert (project.target / "bin" / name).read_text() == "#!/bin/sh\necho 2\n"


@pytest.mark.parametrize("where", ["project", "home", "target"])
def test_a_path_that_is_not_utf8_is_bad_input_before_anything_is_written(
        tmp_path: Path, where: str) -> None:
    """The index keeps paths as SQLite text (UTF-8): a project, a home (the state dir's
    `~`) or a target (through a symlinked folder) whose name is not UTF-8 is exit 2 naming
    it, with nothing written; it was an "unexpected UnicodeEncodeError" after the tree had
    been made. (TOML itself is UTF-8: such a path can only come from the config's folder,
    `~` or a link.)"""
    odd = tmp_path / os.fsdecode(b"odd\xff")
    odd.mkdir()
    project = Project(odd / "proj" if where == "project" else tmp_path / "proj")
    project.write({"bin/a": "#!/bin/sh\n"})
    base = BASE_CONFIG
    if where == "home":
        base = base.replace('state_dir = "state"', 'state_dir = "~/.claude-pm"')
        project.env["HOME"] = str(odd)
    if where == "target":
        (project.root / "link").symlink_to(odd)
        base = base.replace('target = "target/bin"', 'target = "link/bin"')
    project.configure(base=base)
    before = project.snapshot(), sorted(odd.iterdir())

    done = project.invoke("deploy.scripts")

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_error_line(done.stderr, "odd\\xff", "not valid UTF-8")
    assert (project.snapshot(), sorted(odd.iterdir())) == before
