"""Everything printed from a name or path is escaped (issue 11): no file name can forge an
``error:`` line or a GitHub workflow command, and a run recorded done reports (exit 0) even
on a stdout that cannot encode a name."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy_tasks.common import shown
from tests.conftest import REPO, Project, assert_one_error_line

# A folder name that, printed raw, would start a forged error line and a workflow command,
# and carry a tab and a terminal escape.
HOSTILE = "proj\nerror: forged\n::error::forged\tcol\x1b[31mred"
ESCAPED = "proj\\nerror: forged\\n::error::forged\\tcol\\x1b[31mred"


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param("a\nb", "a\\nb", id="newline"),
    pytest.param("a\tb\rc", "a\\tb\\rc", id="tab-and-cr"),
    pytest.param("\x1b[2J", "\\x1b[2J", id="esc"),
    pytest.param("x\x7fy\x00z", "x\\x7fy\\x00z", id="del-and-nul"),
    pytest.param("c1\x85\x9b", "c1\\x85\\x9b", id="c1"),
    pytest.param("ls\u2028ps\u2029", "ls\\u2028ps\\u2029", id="unicode-line-breaks"),
    pytest.param("abc\u202edef", "abc\\u202edef", id="bidi-override"),
    pytest.param(os.fsdecode(b"caf\xe9-\xff"), "caf\\xe9-\\xff", id="non-utf-8-bytes"),
    pytest.param("café/ü €", "café/ü €", id="printable-unicode-kept"),
    pytest.param("back\\slash %25 ::x", "back\\slash %25 ::x", id="plain-text-kept"),
])
def test_shown_escapes_what_could_break_a_line(raw: str, expected: str) -> None:
    """Control characters, Unicode line breaks, bidi controls and surrogate-escaped bytes
    become escapes; printable text (non-ASCII too) stays as it is."""
    assert shown(raw) == expected
    assert shown(Path(raw)) == expected


@given(st.text())
def test_the_ascii_fast_path_escapes_as_the_pattern_does(raw: str) -> None:
    """shown() skips its pattern for printable ASCII; for any text it gives what the
    pattern's substitution gives, and its result holds none of the pattern's characters."""
    import re

    from deploy_tasks.output import UNSAFE, _escape

    assert shown(raw) == re.sub(UNSAFE, _escape, raw)
    assert re.search(UNSAFE, shown(raw)) is None


def test_every_print_of_the_task_layer_goes_through_the_escaping_helper() -> None:
    """No module of deploy_tasks/ calls print() or writes to stdout or stderr itself, but
    output.py's echo and write_text and common.py's emit_json."""
    allowed = {("output.py", "echo"), ("output.py", "write_text"), ("common.py", "emit_json")}
    offenders = []
    for path in sorted((REPO / "deploy_tasks").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            if (path.name, func.name) in allowed:
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                if name in ("print", "sys.stdout.write", "sys.stderr.write"):
                    offenders.append(f"{path.name}:{node.lineno} {func.name}: {name}")

    assert offenders == []


@pytest.fixture
def hostile(tmp_path: Path) -> Project:
    """A project whose folder's name holds a newline, ``::error::``, a tab and an ESC."""
    proj = Project(tmp_path / HOSTILE)
    (proj.root / "bin").mkdir(parents=True)
    proj.write({"bin/tool": "#!/bin/sh\necho v1\n", "versions/MEMORY_VERSION": "003\n"})
    proj.configure()
    return proj


def assert_no_forged_lines(*outputs: str) -> None:
    """No line of the outputs starts a forged error or workflow command, and the folder
    shows escaped wherever it shows."""
    for output in outputs:
        for line in output.splitlines():
            assert not line.startswith(("error: forged", "::error::forged")), output
            assert "\x1b" not in line and "\t" not in line, output


def test_plan_result_status_and_history_lines_escape_the_path(hostile: Project) -> None:
    """The dry run's plan and diff header, the run's result lines, the status table and the
    backups list show the folder escaped, on one line each."""
    dry = hostile.ok("deploy.scripts", "--dry-run")
    run = hostile.ok("deploy.scripts")
    hostile.write({"bin/tool": "#!/bin/sh\necho v2\n"})
    again = hostile.ok("deploy.scripts")
    status = hostile.ok("scripts.status")
    listed = hostile.ok("backups.list")
    tree = hostile.ok("backups.status")

    assert_no_forged_lines(dry.stdout, run.stdout, again.stdout, status.stdout, listed.stdout,
                           tree.stdout)
    assert ESCAPED in dry.stdout
    assert f"would create  {shown(hostile.target / 'bin' / 'tool')}\n" in dry.stdout
    assert f"+++ {shown(hostile.target / 'bin' / 'tool')}\n" in dry.stdout
    assert f"created  {shown(hostile.target / 'bin' / 'tool')}  (was absent" in run.stdout
    assert f"updated  {shown(hostile.target / 'bin' / 'tool')}  (backup" in again.stdout
    assert shown(hostile.target / "bin" / "tool") in status.stdout
    assert shown(hostile.target / "bin" / "tool") in listed.stdout
    assert f"backup tree: {shown(hostile.tree)}\n" in tree.stdout


def test_an_error_line_and_its_annotation_escape_the_path(hostile: Project) -> None:
    """Under GitHub Actions an error is one ``error:`` line and one ``::error`` command, the
    path escaped in both; the step summary's table keeps to its rows."""
    summary = hostile.root.parent / "summary.md"
    hostile.write({"versions/MEMORY_VERSION": "not a version at all\n"})
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}

    failed = hostile.invoke("versions.bump", "memory", env=env)
    hostile.ok("deploy.scripts", env=env)

    lines = failed.stderr.splitlines()
    assert failed.returncode == 2
    assert len(lines) == 2, failed.stderr
    assert lines[0].startswith(f"error: {shown(hostile.root)}/versions/MEMORY_VERSION: ")
    assert lines[1].startswith("::error ")
    assert f"title=versions.bump::{shown(hostile.root)}/versions/" in lines[1]
    assert_no_forged_lines(failed.stderr)
    rows = [line for line in summary.read_text().splitlines() if line.startswith("| create")]
    assert rows == [f"| create | `{shown(hostile.target / 'bin' / 'tool')}` | `-` | 1 |"]


def test_a_non_utf8_path_in_an_error_line_shows_its_bytes(project: Project) -> None:
    """A path with bytes that are not UTF-8 prints them as ``\\xff``, not a crash."""
    missing = project.root / os.fsdecode(b"conf\xff\xfe") / "deploy.toml"

    done = project.invoke("history", env={"DEPLOY_CONFIG": str(missing)})

    assert done.returncode == 2
    assert_one_error_line(done.stderr, f"{project.root}/conf\\xff\\xfe/deploy.toml: config "
                                       "file not found")


@pytest.mark.parametrize("env", [
    pytest.param({"PYTHONIOENCODING": "ascii"}, id="PYTHONIOENCODING=ascii"),
    pytest.param({"LC_ALL": "C", "LANG": "C"}, id="LC_ALL=C"),
    pytest.param({"LANG": "C", "PYTHONIOENCODING": "ascii", "GITHUB_ACTIONS": "true"},
                 id="ascii-under-github-actions"),
])
def test_a_run_recorded_done_exits_0_on_a_stdout_that_cannot_encode_the_target(
        project: Project, env: dict[str, str]) -> None:
    """A non-ASCII target folder on an ASCII stdout: the dry run, the run, the status table
    and the rollback report (escaped where stdout cannot show it) and exit 0."""
    project.write({"bin/tool": "#!/bin/sh\necho héllo\n"})
    project.configure(base=project.config_path.read_text().replace('"target/bin"',
                                                                   '"target/zielé"'))
    env = {**env, "GITHUB_STEP_SUMMARY": str(project.root / "summary.md")}

    dry = project.ok("deploy.scripts", "--dry-run", env=env)
    run = project.ok("deploy.scripts", env=env)
    status = project.ok("scripts.status", env=env)
    undo = project.ok("rollback.scripts", env=env)

    ascii_only = env.get("PYTHONIOENCODING") == "ascii"
    folder = "ziel\\xe9" if ascii_only else "zielé"
    assert f"{folder}/tool" in dry.stdout and ("echo h\\xe9llo" if ascii_only else "héllo") \
        in dry.stdout
    assert f"created  {project.target}/{folder}/tool" in run.stdout
    assert f"{folder}/tool" in status.stdout
    assert f"removed  {project.target}/{folder}/tool" in undo.stdout
    assert not (project.target / "zielé" / "tool").exists()
    history = project.json("history")
    assert [r["state"] for r in history["runs"]] == ["done", "undone"]
