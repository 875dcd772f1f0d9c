"""The task layer's own promises: importing ``tasks`` has no side effects on the process,
and the rollback flags' help comes from the category table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deploy import categories
from tests.conftest import REPO, Project, frozen_at_start

# What the ``invoke`` console script runs (``from invoke.main import program``), with an exit
# hook that reports how many objects gc.freeze() moved to the permanent generation.
CLI_REPORTING_FREEZE = """\
import atexit, gc, sys
atexit.register(lambda: print(f"freeze count {gc.get_freeze_count()}", file=sys.stderr))
from invoke.main import program
sys.argv = ["invoke", *sys.argv[1:]]
program.run()
"""


def freeze_count(stderr: str) -> int:
    lines = [line for line in stderr.splitlines() if line.startswith("freeze count ")]
    assert len(lines) == 1, stderr
    return int(lines[0].removeprefix("freeze count "))


def test_importing_tasks_freezes_nothing() -> None:
    """A process that imports ``tasks`` (as the test suite and libraries do) keeps its
    collector as it was: gc.freeze() is the CLI's business."""
    done = subprocess.run([sys.executable, "-c", "import gc, tasks; print(gc.get_freeze_count())"],
                          cwd=REPO, capture_output=True, text=True, check=True)

    assert int(done.stdout) == frozen_at_start()


@pytest.mark.parametrize(("args", "frozen"), [
    pytest.param(("history",), True, id="running-a-task-freezes"),
    pytest.param(("--list",), False, id="listing-runs-nothing-to-freeze-for"),
])
def test_the_cli_freezes_before_it_runs_tasks(project: Project, args: tuple[str, ...],
                                             frozen: bool) -> None:
    """``invoke TASK`` freezes what is loaded once it has parsed the command line, before
    the task runs; ``invoke --list`` runs no task and freezes nothing."""
    env = {**os.environ, "DEPLOY_CONFIG": str(project.config_path)}

    done = subprocess.run([sys.executable, "-c", CLI_REPORTING_FREEZE, "--search-root",
                           str(REPO), *args], cwd=project.root, env=env, capture_output=True,
                          text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert (freeze_count(done.stderr) > frozen_at_start()) is frozen


@pytest.mark.parametrize("category", [
    pytest.param(c, id=c.name) for c in categories.TABLE if c.flag])
def test_rollback_narrowing_flags_show_the_category_tables_help(project: Project,
                                                                category: categories.Category
                                                                ) -> None:
    """``invoke --help rollback.<category>`` describes the narrowing flag in the table's words."""
    done = project.ok("--help", f"rollback.{category.name}")

    # Invoke wraps the help column; the flag's own text follows its name.
    # A repeatable flag shows its value (tests/test_help.py): --name=NAME.
    shown = f"--{category.flag}={category.flag.upper()} {category.help}"
    assert shown in " ".join(done.stdout.split()), done.stdout
