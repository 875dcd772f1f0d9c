"""A reader that goes away (`invoke history | head`) ends nothing half way and prints no
traceback: the task goes on to its own end and exit code, its output sent nowhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, Project


def closed_stdout(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a stdout whose reader is already gone: every write fails EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
            cwd=project.root, env={**os.environ, "DEPLOY_CONFIG": str(project.config_path)},
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["--list"], ["--help", "deploy.scripts"], ["history"],
                                  ["history", "--json"], ["backups.list"]],
                         ids=["list", "help", "history", "history-json", "backups-list"])
def test_reading_tasks_end_quietly(project: Project, args: list[str]) -> None:
    project.write({"bin/a": "#!/bin/sh\n"})
    project.ok("deploy.scripts")

    done = closed_stdout(project, *args)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["text", "json"])
def test_a_deploy_whose_reader_left_still_finishes(project: Project, args: list[str]) -> None:
    project.write({"bin/a": "#!/bin/sh\necho new\n", "target/bin/a": "#!/bin/sh\necho old\n"})

    done = closed_stdout(project, "deploy.scripts", *args)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (project.target / "bin" / "a").read_text() == "#!/bin/sh\necho new\n"
    runs = project.json("history")["runs"]
    assert [(r["kind"], r["state"], r["changed"]) for r in runs] == [("deploy", "done", 1)]
