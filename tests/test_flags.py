"""Every task's flags (issue 11): one meaning per short flag, Invoke's ``--dry`` never a real
write, and whole-number flags checked against their range before a task runs."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from invoke import Config, Context, Program, Task

from deploy_tasks.flags import SHORT_FLAGS
from tests.conftest import BASE_CONFIG, Project, assert_one_error_line

INT64_MAX = 2**63 - 1
# The tasks that take no --dry-run: they only read, or are the developer's own (lint and
# test run commands through c.run, which --dry echoes; bench and reliability print theirs).
WITHOUT_DRY_RUN = {
    "history.show", "scripts.status", "templates.history", "templates.status", "versions.show",
    "versions.check",
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
        "k": "k", "v": "verbose"}  # reliability's -k EXPR is that flag's only name, as in pytest


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
    assert set(SHORT_FLAGS) == {"dry-run", "json", "wait", "quick", "verbose"}


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


# -- whole-number flags out of range -------------------------------------------------------

@pytest.mark.parametrize(("args", "needle"), [
    pytest.param(("history", "--limit", str(2**64)),
                 f"--limit {2**64}: out of range; from 0 to {INT64_MAX}", id="limit-2-to-the-64"),
    pytest.param(("history", "--limit", "-1"), "--limit -1: out of range", id="limit-negative"),
    pytest.param(("backups.list", "--limit", str(2**63)), f"--limit {2**63}: out of range",
                 id="backups-list-limit"),
    pytest.param(("backups.status", "--limit", str(2**63)), f"--limit {2**63}: out of range",
                 id="backups-status-limit"),
    pytest.param(("history", "--page", str(2**63)), f"--page {2**63}: out of range",
                 id="page-2-to-the-63"),
    pytest.param(("history", "--page", "0"), "--page 0: out of range; from 1", id="page-zero"),
    pytest.param(("history", "--page", str(2**62)), "for --limit 50", id="page-times-limit"),
    pytest.param(("rollback.release", "--run", str(2**63)), f"--run {2**63}: out of range",
                 id="run-2-to-the-63"),
    pytest.param(("rollback.release", "--run", "-3"), "--run -3: out of range",
                 id="run-negative"),
    pytest.param(("rollback.scripts", "--to", str(2**63)), f"--to {2**63}: out of range",
                 id="to-2-to-the-63"),
    pytest.param(("rollback.versions", "--to", "one"), "--to 'one': not a whole number",
                 id="to-not-a-number"),
    pytest.param(("rollback.framework", "--to", "1" * 5000), "(5000 characters): out of range",
                 id="to-5000-digits"),
    pytest.param(("rollback.templates", "--id", "a", "--render", str(2**63)),
                 f"--render {2**63}: out of range", id="render-2-to-the-63"),
    pytest.param(("deploy.scripts", "--wait", "-1"), "--wait -1: out of range; from 0 to 86400",
                 id="wait-negative"),
    pytest.param(("backups.prune", "--dry-run", "--wait", str(2**63)),
                 f"--wait {2**63}: out of range", id="wait-2-to-the-63-even-when-dry"),
    pytest.param(("versions.bump", "memory", "--to", "1" * 5000),
                 "--to: the version has a number of 5000 digits", id="bump-to-5000-digits"),
    pytest.param(("versions.bulk", "--set", "memory=" + "2" * 5000),
                 "--set memory: the version has a number of 5000 digits",
                 id="bulk-set-5000-digits"),
])
def test_a_flag_out_of_range_is_exit_2_naming_it(project: Project, args: tuple[str, ...],
                                                 needle: str) -> None:
    """A whole-number flag outside its range (SQLite's integers stop at 2**63 - 1; --wait
    at a day) or a version of 5,000 digits: one error line naming the flag, nothing written."""
    project.write({"versions/MEMORY_VERSION": "003\n", "bin/tool": "#!/bin/sh\n"})
    before = project.snapshot()

    done = project.invoke(*args)

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_error_line(done.stderr, needle)
    assert "unexpected" not in done.stderr
    assert project.snapshot() == before


def test_flags_in_range_still_work(project: Project) -> None:
    """In range, the same flags behave as before; ``history --limit 0`` lists every run."""
    project.write({"bin/tool": "#!/bin/sh\necho v1\n"})
    project.ok("deploy.scripts", "--wait", "86400")
    project.write({"bin/tool": "#!/bin/sh\necho v2\n"})
    project.ok("deploy.scripts")

    everything = project.json("history", "--limit", "0", "--page", "1")
    second_page = project.json("history", "--limit", "1", "--page", "2")
    missing = project.invoke("rollback.release", "--run", str(INT64_MAX), "--dry-run")

    assert [r["id"] for r in everything["runs"]] == [2, 1]
    assert [r["id"] for r in second_page["runs"]] == [1]
    assert missing.returncode == 2
    assert_one_error_line(missing.stderr, f"no run {INT64_MAX} in the index")


def test_every_task_takes_verbose_and_every_writing_task_quiet() -> None:
    """--verbose (-v) is on every task; --quiet (no short flag: -q is --quick) on each task
    that writes, i.e. each that takes --dry-run."""
    for name, found in every_task():
        names = {a.names for a in found.get_arguments()}
        writes = any(a.name == "dry_run" for a in found.get_arguments())
        assert ("verbose", "v") in names, name
        assert (("quiet",) in names) == writes, name
