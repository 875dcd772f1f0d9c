"""``--help TASK`` shows a value placeholder on repeatable flags (issue 12), for ``invoke``
in a checkout and for the ``claude-pm-deploy`` program alike: Invoke's own help prints a
list flag bare (``--name``), as if it took no value."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, Project, assert_one_error_line
from tests.test_flags import every_task

PROGRAM = "from deploy_tasks.program import main; main()"


def help_text(runner: str, task: str) -> str:
    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO)] \
        if runner == "invoke" else [sys.executable, "-c", PROGRAM]
    done = subprocess.run([*command, "--help", task], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def repeatable() -> list[tuple[str, str]]:
    """(task, long flag) of every repeatable flag of the collection."""
    return [(name, arg.names[0]) for name, found in every_task()
            for arg in found.get_arguments() if arg.kind is list]


def test_the_collection_has_repeatable_flags() -> None:
    """The flags below are there to be checked (a test over nothing proves nothing)."""
    assert {("deploy.scripts", "name"), ("versions.bulk", "set"),
            ("rollback.parents", "dir")} <= set(repeatable())


@pytest.mark.parametrize("runner", ["invoke", "claude-pm-deploy"])
def test_every_repeatable_flag_shows_its_placeholder(runner: str) -> None:
    """Each repeatable flag reads --flag=VALUE in its task's help; --set reads NAME=VERSION."""
    by_task: dict[str, list[str]] = {}
    for task, long in repeatable():
        by_task.setdefault(task, []).append(long)

    for task, flags in by_task.items():
        text = help_text(runner, task)
        for long in flags:
            value = "NAME=VERSION" if long == "set" else long.upper().replace("-", "_")
            assert re.search(rf"^\s+--{long}={re.escape(value)}\s", text, re.M), (task, text)


def test_other_flags_keep_invokes_help() -> None:
    """Flags that are not lists are shown as Invoke shows them."""
    text = help_text("invoke", "history")

    assert re.search(r"^\s+--limit=INT\s", text, re.M), text
    assert re.search(r"^\s+-j, --json\s", text, re.M), text


def test_hints_name_the_command_that_runs(project: Project) -> None:
    """An error's hint says `claude-pm-deploy deploy.scripts` under the installed command and
    `invoke deploy.scripts` under invoke (the package writes `invoke`)."""
    project.write({"bin/tool": "#!/bin/sh\n"})

    installed = subprocess.run(
        [sys.executable, "-c", PROGRAM, "--config", str(project.config_path), "scripts.status"],
        capture_output=True, text=True, cwd=project.root, timeout=60, check=False)
    plain = project.invoke("scripts.status")

    assert installed.returncode == plain.returncode == 3
    assert_one_error_line(installed.stderr, "run `claude-pm-deploy deploy.scripts`")
    assert_one_error_line(plain.stderr, "run `invoke deploy.scripts`")
