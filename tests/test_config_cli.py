"""Config mistakes the CLI refuses when it reads the config (issue 11): two entries writing
one file, a target inside the backup tree, files and tables that are not what they should
be, and numbers out of range. Each is exit 2 with one ``error:`` line naming the key or the
file, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, NO_FRAMEWORK_CONFIG, Project, assert_one_error_line

TEMPLATE = """
[[tool.deploy.templates]]
id = "{id}"
source = "tpl/{id}.j2"
target = "{target}"
"""


def with_parents(project: Project, *parents: str, extra: str = "") -> None:
    listed = ", ".join(f'"{p}"' for p in parents)
    project.configure(extra, base=BASE_CONFIG.replace("parents = []", f"parents = [{listed}]"))


def refused(project: Project, *needles: str, task: str = "deploy") -> None:
    """``task`` exits 2 with one error line naming the config file and ``needles``, and
    writes nothing at all (not even the state dir)."""
    before = project.snapshot()

    done = project.invoke(task)

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_error_line(done.stderr, str(project.config_path), *needles)
    assert "unexpected" not in done.stderr
    assert project.snapshot() == before


# -- two entries, one target ---------------------------------------------------------------

@pytest.mark.parametrize(("parents", "extra", "first", "second", "path"), [
    pytest.param((), TEMPLATE.format(id="a", target="target/x.conf")
                 + TEMPLATE.format(id="b", target="target/./sub/../x.conf"),
                 "tool.deploy.templates[0].target (id 'a')",
                 "tool.deploy.templates[1].target (id 'b')", "target/x.conf",
                 id="two-templates-spelled-differently"),
    pytest.param((), TEMPLATE.format(id="a", target="target/framework/CLAUDE.md"),
                 "tool.deploy.framework.install_to", "tool.deploy.templates[0].target (id 'a')",
                 "target/framework/CLAUDE.md", id="template-and-install-to"),
    pytest.param(("p1",), TEMPLATE.format(id="a", target="p1/CLAUDE.md"),
                 "tool.deploy.framework.parents[0] (CLAUDE.md in it)",
                 "tool.deploy.templates[0].target (id 'a')", "p1/CLAUDE.md",
                 id="template-and-a-parents-claude-md"),
    pytest.param(("target/framework",), "", "tool.deploy.framework.install_to",
                 "tool.deploy.framework.parents[0] (CLAUDE.md in it)",
                 "target/framework/CLAUDE.md", id="install-to-and-a-parents-claude-md"),
    pytest.param(("p1", "linked"), "", "tool.deploy.framework.parents[0] (CLAUDE.md in it)",
                 "tool.deploy.framework.parents[1] (CLAUDE.md in it)", "p1/CLAUDE.md",
                 id="a-parent-twice-through-a-symlink"),
])
def test_two_entries_with_one_target_are_refused(project: Project, parents: tuple[str, ...],
                                                extra: str, first: str, second: str,
                                                path: str) -> None:
    """Two entries that resolve to one file: exit 2 naming both entries and the path, for
    every task (the config is refused as it is read, before anything is planned)."""
    (project.root / "p1").mkdir()
    (project.root / "linked").symlink_to("p1")
    project.write({"tpl/CLAUDE.md": "# fw\n", "tpl/a.j2": "a\n", "tpl/b.j2": "b\n"})
    with_parents(project, *parents, extra=extra)

    refused(project, f"{first} and {second} are both {project.root / path}")
    refused(project, first, second, task="history")


def test_an_absolute_and_a_relative_spelling_of_one_target_are_one_target(
        project: Project) -> None:
    """Paths compare resolved: an absolute target and a relative one naming the same file
    through a symlinked folder are one target."""
    (project.root / "real").mkdir()
    (project.root / "alias").symlink_to(project.root / "real")
    project.write({"tpl/a.j2": "a\n", "tpl/b.j2": "b\n"})
    project.configure(TEMPLATE.format(id="a", target=project.root / "alias" / "x")
                      + TEMPLATE.format(id="b", target="real/x"))

    refused(project, "templates[0]", "templates[1]", str(project.root / "real" / "x"))


@pytest.mark.parametrize(("extra", "label", "inside"), [
    pytest.param(TEMPLATE.format(id="a", target="state/backups/templates/a/evil.backup"),
                 "tool.deploy.templates[0].target (id 'a')",
                 "state/backups/templates/a/evil.backup", id="template-target"),
    pytest.param(TEMPLATE.format(id="a", target="state/backups/index.sqlite"),
                 "tool.deploy.templates[0].target (id 'a')", "state/backups/index.sqlite",
                 id="template-over-the-index"),
    pytest.param("", "tool.deploy.framework.install_to", "state/backups/CLAUDE.md",
                 id="install-to"),
    pytest.param("", "tool.deploy.scripts.target", "state/backups/scripts",
                 id="scripts-target-folder"),
    pytest.param("", "tool.deploy.versions.dir", "state/backups", id="versions-dir-is-the-tree"),
])
def test_a_target_inside_the_backup_tree_is_refused(project: Project, extra: str, label: str,
                                                   inside: str) -> None:
    """A target (or a folder targets go to) inside ``<state_dir>/backups`` would be written
    into the backup tree: exit 2 naming the entry, the path and the tree."""
    base = BASE_CONFIG
    if label.endswith("install_to"):
        base = base.replace('"target/framework/CLAUDE.md"', f'"{inside}"')
    elif label.endswith("scripts.target"):
        base = base.replace('"target/bin"', f'"{inside}"')
    elif label.endswith("versions.dir"):
        base = base.replace('dir = "versions"', f'dir = "{inside}"')
    project.write({"tpl/a.j2": "a\n"})
    project.configure(extra, base=base)

    refused(project, label, str(project.root / inside), f"backup tree {project.tree}")


def test_the_late_check_still_catches_a_script_that_is_also_a_template_target(
        project: Project) -> None:
    """Which scripts there are is known only once the source folder is read, so a script
    and a template with one target are caught by the release's own check (the safety net in
    deploy/release.py), still before any write."""
    project.write({"bin/tool": "#!/bin/sh\n", "tpl/a.j2": "a\n"})
    project.configure(TEMPLATE.format(id="a", target="target/bin/tool"),
                      base=NO_FRAMEWORK_CONFIG)
    before = project.snapshot()

    done = project.invoke("deploy")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, str(project.target / "bin" / "tool"), "two entries")
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
    """The bounds themselves are fine."""
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
