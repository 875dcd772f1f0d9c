"""``[tool.deploy.versions.files]`` and the release ``VERSION`` through the real CLI: more
version files (the original's ``framework/VERSION``, ``bin/VERSION``) shown, bumped, checked,
backed up under names that stay unique, rolled back and reindexed (issue 12)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.categories import RELEASE_KEY, version_file_name
from deploy.versions.files import FILE_NAME
from tests.conftest import Project, assert_one_error_line

# The shapes of the original's files (v0.7.5 bin/VERSION holds "1.0.1", v0.8.0 "002", both
# without a final newline); the bytes are ours.
FILES = {"versions/MEMORY_VERSION": "003\n", "versions/VERSION": "0.7.5\n",
         "framework/VERSION": "012", "bin/VERSION": "1.0.1"}
TABLE = """
[tool.deploy.versions.files]
framework_core = "framework/VERSION"
bin = "bin/VERSION"
"""
STAMP = r"\d{8}_\d{6}"  # no _NN counter: each name is unique by itself


@pytest.fixture
def vf(project: Project) -> Project:
    """Two files both called VERSION in the table, one subsystem file, the release VERSION."""
    project.write(FILES)
    project.configure(TABLE)
    return project


def read(project: Project, rel: str) -> str:
    return (project.root / rel).read_text()


def test_show_lists_table_subsystems_with_their_files(vf: Project) -> None:
    """versions.show: the table's subsystems beside the folder's, each file named; JSON too."""
    text = vf.ok("versions.show").stdout
    out = vf.json("versions.show")

    assert out["versions"] == {"memory": "003", "framework_core": "012", "bin": "1.0.1"}
    assert out["files"]["framework_core"] == str(vf.root / "framework" / "VERSION")
    assert out["framework_version"] == "0.7.5"
    lines = text.splitlines()
    assert re.fullmatch(r"framework_core\s+012\s+framework/VERSION", lines[1]), text
    assert re.fullmatch(r"bin\s+1\.0\.1\s+bin/VERSION", lines[2]), text
    assert re.fullmatch(r"memory\s+003", lines[0]), text


def test_bulk_bump_of_two_files_named_version_gets_two_backup_names(vf: Project) -> None:
    """Both VERSION files bumped in one run: layout kept (no final newline), and each backup
    is named after its subsystem, so neither name needs a counter and each is derivable."""
    out = vf.json("versions.bulk", "--set", "framework_core=013", "--set", "bin=1.0.2")

    assert read(vf, "framework/VERSION") == "013"
    assert read(vf, "bin/VERSION") == "1.0.2"
    names = {c["key"]: Path(c["backup"]).name for c in out["changes"]}
    assert re.fullmatch(rf"FRAMEWORK_CORE_VERSION_backup_{STAMP}", names["framework_core"])
    assert re.fullmatch(rf"BIN_VERSION_backup_{STAMP}", names["bin"])
    assert (vf.tree / "versions" / names["bin"]).read_bytes() == b"1.0.1"


def test_bump_rollback_by_subsystem_restores_only_that_file(vf: Project) -> None:
    """rollback.versions --subsystem bin undoes bin's bump and leaves framework_core's."""
    vf.ok("versions.bump", "framework_core")
    vf.ok("versions.bump", "bin")

    vf.ok("rollback.versions", "--subsystem", "framework_core")

    assert read(vf, "framework/VERSION") == "012"
    assert read(vf, "bin/VERSION") == "1.0.2"


def test_release_version_bumps_and_rolls_back(vf: Project) -> None:
    """versions.bump version sets the release VERSION (0.7.5 -> 0.7.6), backed up as
    VERSION_backup_<ts>; rollback.versions --subsystem version brings 0.7.5 back."""
    out = vf.json("versions.bump", "version")

    assert read(vf, "versions/VERSION") == "0.7.6\n"
    (change,) = out["changes"]
    assert change["key"] == "version"
    assert re.fullmatch(rf"VERSION_backup_{STAMP}", Path(change["backup"]).name)
    assert vf.json("versions.show")["framework_version"] == "0.7.6"

    vf.ok("rollback.versions", "--subsystem", "version")

    assert read(vf, "versions/VERSION") == "0.7.5\n"


def test_check_covers_table_subsystems_and_the_release(vf: Project) -> None:
    """requires may name a table subsystem and version; one unmet is exit 3 naming its file."""
    vf.configure(TABLE + '[tool.deploy.versions.requires]\nbin = ">=1.0"\n'
                 'framework_core = ">=13"\nversion = ">=0.7"\n')

    done = vf.invoke("versions.check")

    assert done.returncode == 3
    assert "bin             1.0.1" in done.stdout
    assert_one_error_line(done.stderr, str(vf.root / "framework" / "VERSION"), "outdated")
    assert "version" in done.stdout and "0.7.5" in done.stdout


def test_templates_see_table_subsystems(vf: Project) -> None:
    """A template's versions map holds the table's subsystems too."""
    vf.configure(TABLE + '[[tool.deploy.templates]]\nid = "v"\nsource = "tpl/v.j2"\n'
                 'target = "target/v.txt"\n')
    vf.write({"tpl/v.j2": "{{ versions.bin }} {{ versions.framework_core }}\n"})

    vf.ok("deploy.templates")

    assert (vf.target / "v.txt").read_text() == "1.0.1 012\n"


def test_reindex_finds_each_version_file_from_its_backup_name(vf: Project) -> None:
    """After the index is lost, backups.reindex gives each backup its own file back: the
    name carries the subsystem, the table its path."""
    vf.ok("versions.bulk", "--set", "framework_core=013", "--set", "bin=1.0.2",
          "--set", "version=0.7.6")
    (vf.tree / "index.sqlite").unlink()

    vf.ok("backups.reindex")
    listed = vf.json("backups.list")["backups"]

    targets = {b["filename"].split("_backup_")[0]: b["target"] for b in listed}
    assert targets == {"FRAMEWORK_CORE_VERSION": str(vf.root / "framework" / "VERSION"),
                       "BIN_VERSION": str(vf.root / "bin" / "VERSION"),
                       "VERSION": str(vf.root / "versions" / "VERSION")}


def test_backups_create_copies_table_files_and_the_release(vf: Project) -> None:
    """backups.create --category versions backs up every version file, table and release."""
    out = vf.json("backups.create", "--category", "versions")

    assert sorted(c["key"] for c in out["changes"]) == [
        "bin", "framework_core", "memory", "version"]


@pytest.mark.parametrize(("table", "needles"), [
    pytest.param('up = "../outside/VERSION"\n', ("outside the project",), id="escapes"),
    pytest.param('abs = "/etc/hostname"\n', ("outside the project",), id="absolute-outside"),
    pytest.param('"../x" = "framework/VERSION"\n', ("path separator",), id="bad-name"),
    pytest.param('"-rf" = "framework/VERSION"\n', ("starts with '-'",), id="dash-name"),
    pytest.param('version = "framework/VERSION"\n', ("release VERSION",), id="reserved"),
    pytest.param('memory = "framework/VERSION"\n', ("also the file",), id="shadows-subsystem"),
    pytest.param('again = "versions/MEMORY_VERSION"\n', ("subsystem 'memory'",),
                 id="another-subsystems-file"),
    pytest.param('rel = "versions/VERSION"\n', ("the release VERSION",), id="release-file"),
    pytest.param('a = "bin/VERSION"\nb = "bin/./VERSION"\n', ("one file, one subsystem",),
                 id="one-file-twice"),
    pytest.param('x = "framework/"\n', ("names a folder",), id="folder-path"),
    pytest.param('d = "framework"\n', ("is a folder",), id="a-folder"),
    pytest.param('n = 3\n', ("must be a path",), id="not-a-string"),
])
def test_bad_entries_exit_2_and_write_nothing(project: Project, table: str,
                                              needles: tuple[str, ...]) -> None:
    """Every bad table entry is refused (exit 2, naming it) by show and bump alike."""
    project.write(FILES)
    project.configure("\n[tool.deploy.versions.files]\n" + table)
    before = project.snapshot()

    shown = project.invoke("versions.show")
    bumped = project.invoke("versions.bulk", "--set", "memory=004")

    for done in (shown, bumped):
        assert done.returncode == 2, done
        assert_one_error_line(done.stderr, *needles)
    assert project.snapshot() == before


def test_a_symlinked_version_file_is_refused(project: Project) -> None:
    """A table entry that is a symlink (even to a file in the project) is never followed."""
    project.write({**FILES, "real/VERSION": "5\n"})
    os.symlink(project.root / "real" / "VERSION", project.root / "framework" / "LINKED")
    project.configure('\n[tool.deploy.versions.files]\nlinked = "framework/LINKED"\n')
    before = project.snapshot()

    done = project.invoke("versions.bump", "linked")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "framework/LINKED", "symlink")
    assert project.snapshot() == before


def test_a_folder_symlink_out_of_the_project_is_refused(project: Project,
                                                        tmp_path: Path) -> None:
    """A folder inside the project that links outside it does not let an entry escape."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "VERSION").write_text("1\n")
    project.write(FILES)
    os.symlink(outside, project.root / "linked")
    project.configure('\n[tool.deploy.versions.files]\nout = "linked/VERSION"\n')

    done = project.invoke("versions.show")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "outside the project")


def test_a_release_version_no_requirement_names_is_not_read(project: Project) -> None:
    """A VERSION file that is no version (prose) stops nothing that does not ask for it:
    versions.check and the release gate read it only when requires names version."""
    project.write({"versions/MEMORY_VERSION": "003\n", "versions/VERSION": "see CHANGELOG\n"})
    project.configure('\n[tool.deploy.versions.requires]\nmemory = ">=3"\n')

    checked = project.invoke("versions.check")
    project.configure('\n[tool.deploy.versions.requires]\nversion = ">=1"\n')
    asked = project.invoke("versions.check")

    assert checked.returncode == 0, checked.stderr
    assert asked.returncode == 2
    assert_one_error_line(asked.stderr, "versions/VERSION")


SUBSYSTEMS = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,30}", fullmatch=True)


@given(SUBSYSTEMS, SUBSYSTEMS)
def test_backup_names_are_unique_and_lead_back_to_the_subsystem(a: str, b: str) -> None:
    """A version backup's name comes from its subsystem alone: two subsystems never share
    one, and the name gives the subsystem back (what backups.reindex relies on)."""
    for key in (a, b):
        name = version_file_name(key)
        match = FILE_NAME.match(name)
        back = RELEASE_KEY if name == "VERSION" else match.group(1).lower() if match else None
        assert back == key
    assert (version_file_name(a) == version_file_name(b)) == (a == b)
