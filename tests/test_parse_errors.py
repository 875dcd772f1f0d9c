"""Invoke's own parse errors end like ours, one ``error:`` line and exit 2, for both entry
points: ``invoke`` in a checkout (through ``tasks.py``) and the ``claude-pm-deploy`` Program
(run here from the checkout; ``test_program.py`` runs the installed console script)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import Project, assert_one_error_line

# The installed console script, run from the checkout: what `claude-pm-deploy` runs.
PROGRAM = "from deploy_tasks.program import main; main()"

# (arguments, what the one error line says), for both entry points.
CASES = [
    pytest.param(("deploy", "--nope"), "deploy: unknown flag '--nope'", id="unknown-flag"),
    pytest.param(("--nope",), "unknown flag '--nope'", id="unknown-core-flag"),
    pytest.param(("versions.bump", "memory", "--to"), "versions.bump: --to needs a value",
                 id="missing-flag-value"),
    pytest.param(("history", "--limit", "abc"), "history: --limit takes an integer, not 'abc'",
                 id="bad-int"),
    pytest.param(("history", "--limit=abc"), "history: --limit takes an integer, not 'abc'",
                 id="bad-int-with-equals"),
    pytest.param(("deploy", "--wait", "abc"), "deploy: --wait takes an integer, not 'abc'",
                 id="bad-int-wait"),
    pytest.param(("nosuchtask",), "unknown task 'nosuchtask'", id="unknown-task"),
    pytest.param(("deploy", "extra"), "deploy: unexpected argument 'extra'", id="stray-argument"),
    pytest.param(("versions.bump",), "versions.bump: missing argument 'subsystem'",
                 id="missing-positional"),
    pytest.param(("--help", "nosuch"), "unknown task 'nosuch'", id="help-for-unknown-task"),
    pytest.param(("--list", "nosuch"), "--list nosuch: no such collection",
                 id="list-unknown-collection"),
    pytest.param(("--list", "--list-format", "bogus"),
                 "--list-format takes flat, nested or json, not 'bogus'", id="bad-list-format"),
]


def run(entry: str, project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    if entry == "invoke":
        return project.invoke(*args)
    env = {**os.environ, "DEPLOY_CONFIG": str(project.config_path)}
    return subprocess.run([sys.executable, "-c", PROGRAM, *args], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("entry", ["invoke", "claude-pm-deploy"])
@pytest.mark.parametrize(("args", "message"), CASES)
def test_a_parse_error_is_one_error_line_and_exit_2(project: Project, entry: str,
                                                    args: tuple[str, ...], message: str) -> None:
    """Each of Invoke's parse errors (and the ValueError of a flag's cast, a traceback in
    Invoke itself) is one ``error:`` line naming the task and the flag, exit 2."""
    done = run(entry, project, *args)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert_one_error_line(done.stderr, f"error: {message}")
    assert done.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(("--config",), "--config needs a value", id="config-without-value"),
    pytest.param(("--list-depth", "abc", "--list"), "--list-depth takes an integer, not 'abc'",
                 id="bad-int-core-flag"),
    pytest.param(("-T", "abc", "history"), "--command-timeout takes an integer, not 'abc'",
                 id="bad-int-core-flag-before-the-task"),
])
def test_the_programs_core_flags_fail_the_same_way(project: Project, args: tuple[str, ...],
                                                   message: str) -> None:
    """The installed command also catches its core flags' errors, parsed before any task:
    ``invoke`` parses those before it reads tasks.py (see the README's limitation)."""
    done = run("claude-pm-deploy", project, *args)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert_one_error_line(done.stderr, f"error: {message}")


@pytest.mark.parametrize("entry", ["invoke", "claude-pm-deploy"])
def test_a_good_command_line_still_runs(project: Project, entry: str) -> None:
    """The guard changes nothing for a command line that parses: the task runs."""
    project.write({"versions/MEMORY_VERSION": "003\n"})

    done = run(entry, project, "versions.show")

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["memory", "003"]


def test_importing_tasks_leaves_invokes_program_alone() -> None:
    """Imported outside Invoke's loading of it (tests, libraries), tasks.py guards nothing:
    only a Program that is loading it becomes a ParseGuard."""
    code = ("from invoke.main import program; import tasks; from deploy_tasks.parsing import "
            "ParseGuard; print(isinstance(program, ParseGuard))")

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=os.path.dirname(os.path.dirname(__file__)))

    assert done.stdout.strip() == "False"
