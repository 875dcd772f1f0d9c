"""Config mistakes the CLI refuses when it reads the config (issue 11): files and tables
that are not what they should be, and numbers out of range. Each is exit 2 with one
``error:`` line naming the key or the file, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Project, assert_one_error_line


def refused(project: Project, *needles: str, task: str = "deploy") -> None:
    """``task`` exits 2 with one error line naming the config file and ``needles``, and
    writes nothing at all (not even the state dir)."""
    before = project.snapshot()

    done = project.invoke(task)

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_error_line(done.stderr, str(project.config_path), *needles)
    assert "unexpected" not in done.stderr
    assert project.snapshot() == before


# -- files and tables ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "needles"), [
    pytest.param(b'[tool.deploy]\nstate_dir = "st\xffate"\n',
                 ("not UTF-8", "byte 0xff at offset 29"), id="not-utf-8"),
    pytest.param(b'tool = "deploy"\n', ("tool must be a table",), id="tool-not-a-table"),
    pytest.param(b"[tool]\ndeploy = 3\n", ("tool.deploy must be a table",),
                 id="tool-deploy-not-a-table"),
    pytest.param(b'[project]\nname = "x"\n', ("no [tool.deploy] table",), id="no-table"),
    pytest.param(b"[tool.deploy.backup]\nretention_days = 1" + b"0" * 5000 + b"\n",
                 ("more than 4300 digits",), id="5000-digit-integer"),
])
def test_a_config_file_that_is_not_a_deploy_table_is_refused(project: Project, text: bytes,
                                                            needles: tuple[str, ...]) -> None:
    """A file that is not UTF-8, a ``tool`` or ``tool.deploy`` that is not a table, a file
    without the table, an integer TOML's reader cannot make: exit 2 naming the file."""
    project.config_path.write_bytes(text)

    refused(project, *needles)


# -- numbers out of range ------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "needle"), [
    pytest.param("retention_days", "-1", "from 0 to 36500, not -1", id="retention-negative"),
    pytest.param("retention_days", "36501", "from 0 to 36500, not 36501", id="retention-big"),
    pytest.param("max_backups_per_type", "0", "from 1 to 1000000, not 0", id="max-zero"),
    pytest.param("max_backups_per_type", "18446744073709551616", "not 18446744073709551616",
                 id="max-2-to-the-64"),
    pytest.param("framework_keep", "-2", "from 1 to 1000000, not -2", id="keep-negative"),
    pytest.param("framework_keep", "0x" + "f" * 5000, "not a number that large",
                 id="keep-20000-bits"),
    pytest.param("compress_after_days", "-1", "from 0 to 36500", id="compress-negative"),
    pytest.param("compress_after_days", "9223372036854775808", "from 0 to 36500",
                 id="compress-2-to-the-63"),
])
def test_backup_numbers_out_of_range_are_refused(project: Project, key: str, value: str,
                                                needle: str) -> None:
    """Each whole-number backup key has a range (README): outside it, exit 2 naming the key."""
    project.configure(f"[tool.deploy.backup]\n{key} = {value}\n")

    refused(project, f"tool.deploy.backup.{key} must be {needle}"
            if needle.startswith("from") else f"tool.deploy.backup.{key}", needle)


def test_backup_numbers_at_their_bounds_are_accepted(project: Project) -> None:
    """The bounds themselves are fine (compress_after_days is read, and unused)."""
    project.configure("[tool.deploy.backup]\nretention_days = 36500\nmax_backups_per_type = 1\n"
                      "framework_keep = 1000000\ncompress_after_days = 0\n")

    project.ok("backups.prune", "--dry-run")


def test_a_requirement_with_a_5000_digit_number_is_refused(project: Project) -> None:
    """A ``requires`` specifier packaging could not compare (int() of 5,000 digits): exit 2
    naming the key."""
    project.configure(f'[tool.deploy.versions.requires]\nmemory = ">={"1" * 5000}"\n')

    refused(project, "tool.deploy.versions.requires.memory", "5000 digits")


def test_a_5000_digit_serial_in_a_version_file_names_the_file(project: Project,
                                                             tmp_path: Path) -> None:
    """A version file holding a 5,000-digit serial: exit 2 naming the file, for reading and
    bumping alike, and the file is left as it was."""
    project.write({"versions/MEMORY_VERSION": "9" * 5000 + "\n"})
    before = project.snapshot()

    for args in (("versions.show",), ("versions.bump", "memory"), ("versions.check",)):
        done = project.invoke(*args)

        assert done.returncode == 2, (args, done.stderr)
        assert_one_error_line(done.stderr, str(project.root / "versions" / "MEMORY_VERSION"),
                              "5000 digits")
    assert project.snapshot() == before
