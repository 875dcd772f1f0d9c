"""Every task's flags (issue 11): one meaning per short flag, and Invoke's ``--dry`` never a
real write."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from invoke import Config, Context, Program, Task

from deploy_tasks.flags import SHORT_FLAGS
from tests.conftest import BASE_CONFIG, Project

# The tasks that take no --dry-run: they only read, or are the developer's own (lint and
# test run commands through c.run, which --dry echoes; bench and reliability print theirs).
WITHOUT_DRY_RUN = {
    "history", "scripts.status", "templates.history", "versions.show", "versions.check",
    "backups.status", "backups.verify", "backups.list", "backups.legacy",
    "lint", "test", "bench", "reliability",
}


def every_task() -> Iterator[tuple[str, Task[Any]]]:
    """Each task of tasks.py's collection with its dotted name."""
    import tasks

    def walk(collection: Any, prefix: str) -> Iterator[tuple[str, Task[Any]]]:
        for name, found in collection.tasks.items():
            yield prefix + name, found
        for name, sub in collection.collections.items():
            yield from walk(sub, f"{prefix}{name}.")

    yield from walk(tasks.ns, "")


def flag_meanings() -> dict[str, dict[tuple[str, str], list[str]]]:
    """short flag -> (long flag, kind) -> the tasks where it has that meaning."""
    meanings: dict[str, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, found in every_task():
        for arg in found.get_arguments():
            for short in (n for n in arg.names if len(n) == 1):
                meanings[short][(arg.names[0], arg.kind.__name__)].append(name)
    return meanings


# -- short flags ---------------------------------------------------------------------------

def test_a_short_flag_means_one_thing_on_every_task() -> None:
    """Across every task of the collection, each short flag stands for one long flag of one
    kind, and those are exactly the README's table."""
    meanings = flag_meanings()

    twice = {short: dict(m) for short, m in meanings.items() if len(m) > 1}
    assert twice == {}
    assert {short: next(iter(m))[0] for short, m in meanings.items()} == {
        "n": "dry-run", "d": "dry-run", "j": "json", "w": "wait", "q": "quick",
        "k": "k"}  # reliability's -k EXPR is that flag's only name, as in pytest


def test_d_is_only_ever_the_dry_run() -> None:
    """``-d`` (once ``--dir`` on rollback.parents, which then rolled back for real) means
    ``--dry-run`` wherever it is defined, and every task with ``--dry-run`` has ``-n``."""
    meanings = flag_meanings()
    with_dry_run = {name for name, found in every_task()
                    if any(a.name == "dry_run" for a in found.get_arguments())}

    assert set(meanings["d"]) == {("dry-run", "bool")}
    assert set(meanings["d"][("dry-run", "bool")]) == with_dry_run
    assert set(meanings["n"][("dry-run", "bool")]) == with_dry_run


@pytest.mark.parametrize("long", ["force", "dir", "to", "run", "on-conflict", "render",
                                  "prefix", "name", "id", "subsystem", "set"])
def test_flags_that_change_what_is_written_have_no_short_flag(long: str) -> None:
    """``--force``, ``--dir``, ``--to``, ``--run`` and the like are spelled out in full."""
    for name, found in every_task():
        for arg in found.get_arguments():
            if arg.names[0] == long:
                assert arg.names == (long,), (name, arg.names)


def test_short_flags_shadow_only_the_core_flags_the_readme_names() -> None:
    """A task's short flag hides Invoke's core flag of that letter within the task; only
    ``-d`` (core --debug) and ``-w`` (core --warn-only) do, both on purpose (README)."""
    program = Program()
    core = {short: arg.names[0] for arg in [*program.core_args(), *program.task_args()]
            for short in arg.names if len(short) == 1}

    shadowed = {short: core[short] for short in flag_meanings() if short in core}

    assert shadowed == {"d": "debug", "w": "warn-only"}
    assert set(SHORT_FLAGS) == {"dry-run", "json", "wait", "quick"}


def test_rollback_parents_d_is_a_dry_run(project: Project) -> None:
    """``rollback.parents -d`` is a dry run now: it shows the rollback and restores nothing;
    ``-d DIR`` (the old --dir) is refused by the parser, also restoring nothing."""
    (project.root / "p1").mkdir()
    project.write({"tpl/CLAUDE.md": "# fw\n"})
    project.configure(base=BASE_CONFIG.replace("parents = []", 'parents = ["p1"]'))
    project.ok("deploy.framework")
    before = project.snapshot()

    dry = project.ok("rollback.parents", "-d")
    old_habit = project.invoke("rollback.parents", "-d", str(project.root / "p1"))

    assert "would undo run 1" in dry.stdout
    assert old_habit.returncode != 0
    assert project.snapshot() == before
    assert (project.root / "p1" / "CLAUDE.md").read_text() == "# fw\n"


def test_short_flags_work_on_the_command_line(project: Project) -> None:
    """``-n``, ``-j`` and ``-w`` are --dry-run, --json and --wait."""
    project.write({"bin/tool": "#!/bin/sh\n"})

    out = project.ok("deploy.scripts", "-n", "-j", "-w", "1")

    assert '"dry_run": true' in out.stdout
    assert not project.state.exists()


# -- Invoke's --dry ------------------------------------------------------------------------

def test_the_tasks_without_dry_run_are_the_ones_that_only_read() -> None:
    """A new task that writes must take --dry-run (and so honour --dry); this list is the
    tasks that need not."""
    without = {name for name, found in every_task()
               if not any(a.name == "dry_run" for a in found.get_arguments())}

    assert without == WITHOUT_DRY_RUN


@pytest.mark.parametrize("name", sorted(
    name for name, found in every_task()
    if any(a.name == "dry_run" for a in found.get_arguments())))
def test_invoke_dry_reaches_every_task_as_dry_run(name: str) -> None:
    """With Invoke's ``run.dry`` set (what ``--dry`` and ``-R`` set), the task's body is
    called with ``dry_run=True``; without it, with what it was given."""
    found = dict(every_task())[name]
    seen: list[dict[str, Any]] = []
    probe = copy.copy(found)
    probe.body = lambda c, **kwargs: seen.append(kwargs)

    probe(Context(Config(overrides={"run": {"dry": True}})), dry_run=False)
    probe(Context(), dry_run=False)

    assert [kwargs["dry_run"] for kwargs in seen] == [True, False]


@pytest.mark.parametrize("args", [
    pytest.param(("--dry", "deploy.scripts"), id="--dry-before-the-task"),
    pytest.param(("deploy.scripts", "--dry"), id="--dry-after-the-task"),
    pytest.param(("-R", "deploy.scripts"), id="-R"),
    pytest.param(("--dry", "deploy"), id="--dry-deploy"),
])
def test_invoke_dry_writes_nothing(project: Project, args: tuple[str, ...]) -> None:
    """``invoke --dry deploy.scripts`` is a dry run: the plan, and nothing written at all (it
    used to deploy for real); the same command without --dry deploys."""
    project.write({"bin/tool": "#!/bin/sh\necho v1\n", "tpl/CLAUDE.md": "# fw\n"})
    before = project.snapshot()

    dry = project.ok(*args)

    assert f"would create  {project.target / 'bin' / 'tool'}" in dry.stdout
    assert project.snapshot() == before
    project.ok(*(a for a in args if a not in ("--dry", "-R")))
    assert (project.target / "bin" / "tool").read_text() == "#!/bin/sh\necho v1\n"


def test_invoke_dry_rolls_nothing_back(project: Project) -> None:
    """``invoke --dry rollback.scripts`` shows the rollback and restores nothing; JSON too."""
    project.write({"bin/tool": "#!/bin/sh\necho v1\n"})
    project.ok("deploy.scripts")
    before = project.snapshot()

    shown = project.ok("--dry", "rollback.scripts")
    document = project.json("--dry", "rollback.scripts")

    assert "would undo run 1" in shown.stdout
    assert document["dry_run"] is True and document["run"] is None
    assert project.snapshot() == before


@pytest.mark.parametrize("task", ["bench", "reliability"])
def test_invoke_dry_shows_the_harness_command_instead_of_running_it(project: Project,
                                                                   task: str) -> None:
    """bench and reliability run their harness as a child process, not through c.run:
    under --dry they print that command, as c.run would, and run nothing."""
    done = project.ok("--dry", task, "--quick")

    assert done.stdout.count("\n") == 1
    assert "--quick" in done.stdout or "reliability" in done.stdout
