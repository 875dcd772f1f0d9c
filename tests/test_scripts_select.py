"""Which files of scripts.source are scripts: scripts.include and scripts.exclude (globs
against the file name), and the dotfiles and leftovers that never are, through the CLI."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import NO_FRAMEWORK_CONFIG, Project, assert_one_error_line

SCRIPT = "#!/bin/sh\necho {}\n"
SOURCE = {"bin/claude-pm": SCRIPT.format("pm"), "bin/atd": SCRIPT.format("atd"),
          "bin/VERSION": "002", "bin/.hidden": "x", "bin/claude-pm~": "old",
          "bin/notes.swp": "swap", "bin/claude-pm.backup.20250714_111423": "old",
          "bin/fix.rej": "reject", "bin/fix.orig": "orig", "bin/old.bak": "bak"}


def scripts_config(project: Project, extra: str) -> None:
    project.configure(
        "", base=project.config_path.read_text().replace(
            'target = "target/bin"\n', 'target = "target/bin"\n' + extra))


def deployed(project: Project) -> list[str]:
    folder = project.target / "bin"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_defaults_leave_out_dotfiles_and_leftovers_and_say_why(project: Project) -> None:
    """By default every other regular file is a script; the dry run lists each file left
    out with its reason, and the real run prints the same skips."""
    project.write(SOURCE)

    dry = project.ok("deploy.scripts", "--dry-run").stdout
    real = project.ok("deploy.scripts").stdout

    bin_ = project.root / "bin"
    assert f"skip    {bin_ / '.hidden'} (dotfile)\n" in dry
    assert f'skip    {bin_ / "claude-pm~"} (editor or backup leftover "*~")\n' in dry
    for name, glob in [("notes.swp", "*.swp"), ("old.bak", "*.bak"), ("fix.orig", "*.orig"),
                       ("fix.rej", "*.rej"),
                       ("claude-pm.backup.20250714_111423", "*.backup*")]:
        assert f'skip    {bin_ / name} (editor or backup leftover "{glob}")\n' in dry
        assert f'  skipped  {bin_ / name} (editor or backup leftover "{glob}")\n' in real
    assert "would create" in dry and "VERSION" in dry
    assert deployed(project) == ["VERSION", "atd", "claude-pm"]


def test_include_and_exclude_choose_the_scripts(project: Project) -> None:
    """include picks by glob, exclude removes from that; each file left out is named with the
    glob that left it out, and a second run is nothing to do but still says so."""
    project.write(SOURCE)
    scripts_config(project, 'include = ["claude-*", "VERSION"]\nexclude = ["VERSION"]\n')

    dry = project.ok("deploy.scripts", "--dry-run").stdout
    project.ok("deploy.scripts")
    again = project.ok("deploy.scripts").stdout

    bin_ = project.root / "bin"
    assert f'skip    {bin_ / "VERSION"} (excluded by scripts.exclude "VERSION")\n' in dry
    assert (f'skip    {bin_ / "atd"} (not matched by scripts.include ["claude-*", "VERSION"])\n'
            in dry)
    assert deployed(project) == ["claude-pm"]
    assert again.startswith("nothing to do")
    assert f'skip    {bin_ / "VERSION"} (excluded by scripts.exclude "VERSION")\n' in again


def test_naming_a_file_that_is_no_script_says_why(project: Project) -> None:
    """--name of an excluded file is exit 2 with the reason, nothing written."""
    project.write(SOURCE)
    scripts_config(project, 'exclude = ["VERSION"]\n')

    done = project.invoke("deploy.scripts", "--name", "VERSION")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "bin/VERSION: not a script",
                          'excluded by scripts.exclude "VERSION"')
    assert not project.state.exists()


def test_status_shows_a_deployed_script_excluded_later(project: Project) -> None:
    """A script deployed before it was excluded is reported as excluded, not missing; the
    files that never were scripts are not listed."""
    project.write(SOURCE)
    project.ok("deploy.scripts")

    scripts_config(project, 'exclude = ["VERSION"]\n')
    rows = project.json("scripts.status")["scripts"]

    assert {r["name"]: r["state"] for r in rows} == {
        "VERSION": "excluded", "atd": "synchronized", "claude-pm": "synchronized"}


def test_release_uses_the_same_rules(project: Project) -> None:
    """invoke deploy picks the same scripts as deploy.scripts."""
    project.write(SOURCE)
    project.configure(base=NO_FRAMEWORK_CONFIG)
    scripts_config(project, 'include = ["claude-pm"]\n')

    out = project.ok("deploy").stdout

    assert deployed(project) == ["claude-pm"]
    assert f"skipped  {project.root / 'bin' / 'atd'} (not matched by scripts.include" in out


@pytest.mark.parametrize(("setting", "needle"), [
    pytest.param('include = "claude-pm"', "tool.deploy.scripts.include must be a list",
                 id="include-not-a-list"),
    pytest.param("exclude = [1]", "tool.deploy.scripts.exclude[0] must be a string",
                 id="exclude-not-a-string"),
    pytest.param('exclude = ["bin/x"]', "tool.deploy.scripts.exclude[0] 'bin/x'",
                 id="exclude-a-path"),
    pytest.param('includes = ["*"]', "unknown key tool.deploy.scripts.includes",
                 id="unknown-key"),
])
def test_bad_globs_exit_2_naming_the_key(project: Project, setting: str, needle: str) -> None:
    """A non-list, a non-string glob, a path for a glob and an unknown key are exit 2 naming
    the key, before anything is read or written."""
    project.write(SOURCE)
    scripts_config(project, setting + "\n")

    for task in ("deploy.scripts", "scripts.status"):
        done = project.invoke(task)

        assert done.returncode == 2, done.stderr
        assert_one_error_line(done.stderr, needle)
    assert not project.state.exists()


def reference_left_out(name: str, include: tuple[str, ...], exclude: tuple[str, ...]
                       ) -> str | None:
    """The rule as written first: each glob asked with fnmatch, one at a time."""
    import json
    from fnmatch import fnmatch

    from deploy.scripts import LEFTOVERS

    if name.startswith("."):
        return "dotfile"
    for glob in LEFTOVERS:
        if fnmatch(name, glob):
            return f"editor or backup leftover {json.dumps(glob)}"
    if not any(fnmatch(name, glob) for glob in include):
        return f"not matched by scripts.include [{', '.join(map(json.dumps, include))}]"
    for glob in exclude:
        if fnmatch(name, glob):
            return f"excluded by scripts.exclude {json.dumps(glob)}"
    return None


GLOB_PARTS = st.sampled_from(["*", "?", "a", "b", ".", "~", "[ab]", "[!a]", "bak", "-", "_"])
NAME_PARTS = st.sampled_from(["a", "b", "c", ".", "~", "bak", "swp", "backup", "-", "\n", "é"])


@given(st.lists(NAME_PARTS, min_size=1, max_size=6).map("".join),
       st.lists(st.lists(GLOB_PARTS, min_size=1, max_size=4).map("".join), max_size=3),
       st.lists(st.lists(GLOB_PARTS, min_size=1, max_size=4).map("".join), max_size=3))
def test_one_regex_per_glob_list_says_what_fnmatch_says(name: str, include: list[str],
                                                        exclude: list[str]) -> None:
    """The matcher built once per glob list (deploy.scripts._matcher) gives the same
    verdict and reason as asking fnmatch each glob in turn."""
    from deploy.scripts import left_out

    includes = tuple(include) or ("*",)
    assert left_out(name, includes, tuple(exclude)) == \
        reference_left_out(name, includes, tuple(exclude))
