"""Scratch projects, the operations under test, and two ways to run them.

An operation (:class:`Scenario`) is a writing task of ``tasks.py`` plus a ``prepare`` step
that builds the project it acts on: sources, earlier runs, hand edits. Scenarios
name the tasks they need, so a category another issue has not landed yet is skipped
and picked up as soon as ``tasks.py`` lists it.

Runs go through the real task bodies either in process (:func:`run_task`, for the
fault sweeps: an ``Exit`` from invoke is how an error surfaces) or through the real
CLI in a subprocess (:func:`cli`, optionally under strace).

A prepared project is kept as a golden copy and copied back to the *same* path before
each faulty run, because the index records absolute target paths.
"""

from __future__ import annotations

import contextlib
import io
import os
import random as _random
import re
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import BASE_CONFIG
from tests.reliability import invariants as inv

REPO = Path(__file__).resolve().parents[2]

# The shared base config, with two parent folders, and templates below.
CONFIG = BASE_CONFIG.replace(
    "parents = []", 'parents = ["target/parent1", "target/parent2"]') + """
[[tool.deploy.templates]]
id = "memory-config"
source = "tpl/memory.yaml.j2"
target = "target/memory.yaml"

[[tool.deploy.templates]]
id = "agents"
source = "tpl/agents.md.j2"
target = "target/agents.md"

[tool.deploy.context]
project_name = "claude-pm"
"""


def script(version: str, size: int = 0) -> bytes:
    body = f"#!/bin/sh\necho {version}\n".encode()
    return body + (b"# padding\n" * (size // 10))


@cache
def has_task(name: str) -> bool:
    """Whether ``invoke NAME`` resolves (a collection name runs its default task)."""
    import tasks

    try:
        tasks.ns[name]
    except (KeyError, ValueError):
        return False
    return True


def get_task(name: str) -> Any:
    import tasks

    return tasks.ns[name]


# -- running tasks -------------------------------------------------------------------------------
@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    crash: str | None = None  # the traceback of anything but invoke's Exit

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.crash is None


def run_task(root: Path, task: str, kwargs: dict[str, Any] | None = None, /,
             **more: Any) -> Outcome:
    """Call one task body in process against the project at ``root``, as the CLI would."""
    from invoke import Context
    from invoke.exceptions import Exit

    saved = {k: os.environ.get(k) for k in ("DEPLOY_CONFIG", "HOME", "GITHUB_ACTIONS")}
    os.environ["DEPLOY_CONFIG"] = str(root / "deploy.toml")
    os.environ["HOME"] = str(root / "home")
    os.environ.pop("GITHUB_ACTIONS", None)
    out, err = io.StringIO(), io.StringIO()
    code, crash = 0, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                get_task(task)(Context(), **(kwargs or {}), **more)
            except Exit as done:
                code = done.code
            except BaseException:
                code, crash = 1, traceback.format_exc()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    stderr = err.getvalue() + (crash or "")
    return Outcome(code, out.getvalue(), stderr, crash)


def run_forked(root: Path, task: str, kwargs: dict[str, Any], before: Callable[[], Any]
               ) -> tuple[Outcome, Any]:
    """:func:`run_task` in a forked child, so the run has its own pid as a CLI run would
    (a later run may then tell the temp files it left from a live writer's).

    ``before`` runs in the child around the task (a context manager factory, e.g. an
    injector's ``active``); what it yields is pickled back with the outcome.
    """
    import pickle

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, and leave without running pytest's cleanup
        status = 0
        try:
            os.close(read_fd)
            with before() as state:
                out = run_task(root, task, kwargs)
            data = pickle.dumps((out, state))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(data)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"the forked run of {task} reported nothing")
    out, state = pickle.loads(data)
    return out, state


def cli_args(task: str, kwargs: dict[str, Any]) -> list[str]:
    """The command line that passes ``kwargs`` to ``task`` (invoke's own flag spelling)."""
    args = [task]
    for key, value in kwargs.items():
        flag = "--" + key.rstrip("_").replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        elif value is not False and value is not None:
            args += [flag, str(value)]
    return args


def cli_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "DEPLOY_PREFIX")}
    env.update(DEPLOY_CONFIG=str(root / "deploy.toml"), HOME=str(root / "home"),
               PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


def cli_command(task: str, kwargs: dict[str, Any] | None = None) -> list[str]:
    return [sys.executable, "-m", "invoke", "--search-root", str(REPO),
            *cli_args(task, kwargs or {})]


def cli(root: Path, task: str, kwargs: dict[str, Any] | None = None, *,
        prefix: list[str] | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> Outcome:
    """Run one task through the real CLI in a subprocess (under ``prefix``, e.g. strace)."""
    done = subprocess.run([*(prefix or []), *cli_command(task, kwargs)], cwd=root,
                          env=cli_env(root, env), capture_output=True, text=True,
                          timeout=timeout, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


# -- scenarios -----------------------------------------------------------------------------------
Runner = Callable[..., Outcome]


@dataclass(frozen=True)
class Scenario:
    """One writing operation and the project it runs against."""

    name: str
    task: str
    kwargs: dict[str, Any]
    prepare: Callable[[Path, Runner], None]
    needs: tuple[str, ...] = ()
    note: str = ""

    def missing(self) -> list[str]:
        return [t for t in (self.task, *self.needs) if not has_task(t)]


def write_files(root: Path, files: dict[str, bytes | str], mode: int | None = None) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if mode is not None:
            path.chmod(mode)


def base_project(root: Path) -> None:
    """Config, sources for every category, and an empty HOME."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "home").mkdir(exist_ok=True)
    write_files(root, {
        "deploy.toml": CONFIG,
        "bin/alpha": script("alpha 1"),
        "bin/beta": script("beta 1"),
        "bin/big": script("big 1", 150_000),
        "versions/MEMORY_VERSION": "009\n",
        "versions/CLI_VERSION": "0.7.1\n",
        "versions/VERSION": "0.7.0\n",
        "tpl/CLAUDE.md": "# {{ project_name }} framework 1\nmemory {{ versions.memory }}\n",
        "tpl/memory.yaml.j2": "name: {{ project_name }}\nmemory: {{ versions.memory }}\nrev: 1\n",
        "tpl/agents.md.j2": "# agents for {{ project_name }}\nrev: 1\n",
    })


def must(outcome: Outcome, what: str) -> None:
    if not outcome.ok:
        raise AssertionError(f"{what} failed while preparing: {outcome.stderr}")


def edit_sources(root: Path) -> None:
    """The second release: changed, unchanged, new, and mode-only differences."""
    write_files(root, {"bin/alpha": script("alpha 2"), "bin/gamma": script("gamma 1"),
                       "bin/big": script("big 2", 150_000),
                       "tpl/CLAUDE.md": "# {{ project_name }} framework 2\n",
                       "tpl/memory.yaml.j2": "name: {{ project_name }}\nrev: 2\n",
                       "tpl/agents.md.j2": "# agents\nrev: 2\n"})
    beta = root / "target/bin/beta"
    if beta.exists():
        beta.chmod(0o700)  # same bytes, wrong mode: the deploy must fix the mode only


def prep_scripts(root: Path, run: Runner) -> None:
    base_project(root)
    must(run(root, "deploy.scripts"), "deploy.scripts")
    edit_sources(root)


def prep_scripts_deployed(root: Path, run: Runner) -> None:
    prep_scripts(root, run)
    must(run(root, "deploy.scripts"), "second deploy.scripts")


def prep_scripts_compressed(root: Path, run: Runner) -> None:
    """Three deploys, the backups that are not their target's newest compressed, the third
    run rolled back: the next ``rollback.scripts`` undoes the second, restoring alpha and
    big from ``.zst`` backups (decompressed as they are written) and beta's mode from a
    plain one."""
    prep_scripts_deployed(root, run)
    write_files(root, {"bin/alpha": script("alpha 3"), "bin/big": script("big 3", 150_000)})
    must(run(root, "deploy.scripts"), "third deploy.scripts")
    write_files(root, {"deploy.toml": CONFIG + "\n[tool.deploy.backup]\n"
                       "compression_enabled = true\ncompress_after_days = 0\n"})
    must(run(root, "backups.prune"), "backups.prune")
    must(run(root, "rollback.scripts"), "rollback.scripts of the third")
    zst = {r["key"] for r in inv.read_rows(root / "state" / "backups") or ()
           if r["run"] == 2 and r.get("compressed")}
    if zst != {"alpha", "big"}:
        raise AssertionError(f"run 2's compressed backups are {sorted(zst)}, not alpha and big")


def prep_versions(root: Path, run: Runner) -> None:
    base_project(root)
    must(run(root, "versions.bump", subsystem="memory"), "versions.bump")


def prep_versions_bulked(root: Path, run: Runner) -> None:
    prep_versions(root, run)
    must(run(root, "versions.bulk", set_=["memory=020", "cli=0.8.0"]), "versions.bulk")


def prep_release(root: Path, run: Runner) -> None:
    base_project(root)
    must(run(root, "deploy"), "deploy")
    edit_sources(root)


def prep_release_deployed(root: Path, run: Runner) -> None:
    prep_release(root, run)
    must(run(root, "deploy"), "second deploy")


def prep_framework(root: Path, run: Runner) -> None:
    base_project(root)
    must(run(root, "deploy.framework"), "deploy.framework")
    edit_sources(root)


def prep_framework_deployed(root: Path, run: Runner) -> None:
    prep_framework(root, run)
    must(run(root, "deploy.framework"), "second deploy.framework")


def prep_templates(root: Path, run: Runner) -> None:
    base_project(root)
    must(run(root, "deploy.templates"), "deploy.templates")
    edit_sources(root)


def prep_templates_deployed(root: Path, run: Runner) -> None:
    prep_templates(root, run)
    must(run(root, "deploy.templates"), "second deploy.templates")


SCENARIOS = (
    Scenario("deploy.scripts", "deploy.scripts", {}, prep_scripts),
    Scenario("rollback.scripts", "rollback.scripts", {}, prep_scripts_deployed,
             ("deploy.scripts",)),
    Scenario("rollback.scripts (compressed)", "rollback.scripts", {}, prep_scripts_compressed,
             ("deploy.scripts", "backups.prune")),
    # An explicit --to keeps the retry after a failed run idempotent (a bare bump bumps again).
    Scenario("versions.bump", "versions.bump", {"subsystem": "memory", "to": "012"},
             prep_versions),
    Scenario("versions.bulk", "versions.bulk", {"set_": ["memory=020", "cli=0.8.0"]},
             prep_versions, ("versions.bump",)),
    Scenario("rollback.versions", "rollback.versions", {}, prep_versions_bulked,
             ("versions.bump", "versions.bulk")),
    Scenario("deploy", "deploy", {}, prep_release),
    Scenario("rollback.release", "rollback.release", {}, prep_release_deployed, ("deploy",)),
    Scenario("deploy.framework", "deploy.framework", {}, prep_framework),
    Scenario("rollback.framework", "rollback.framework", {}, prep_framework_deployed,
             ("deploy.framework",)),
    Scenario("rollback.parents", "rollback.parents", {}, prep_framework_deployed,
             ("deploy.framework",)),
    Scenario("deploy.templates", "deploy.templates", {}, prep_templates),
    Scenario("rollback.templates", "rollback.templates", {}, prep_templates_deployed,
             ("deploy.templates",)),
)
BY_NAME = {s.name: s for s in SCENARIOS}


def big_script(version: int) -> bytes:
    """A 24 MiB script: the large-file path (hash on a second thread, writeback started as
    it goes, a backup that gives its pages back) with several windows of it."""
    return script(f"big {version}") + _random.Random(version).randbytes(24 << 20)


def prep_large_scripts(root: Path, run: Runner) -> None:
    base_project(root)
    write_files(root, {"bin/big": big_script(1)})
    must(run(root, "deploy.scripts"), "deploy.scripts")
    edit_sources(root)
    write_files(root, {"bin/big": big_script(2)})


LARGE_SCRIPTS = Scenario("deploy.scripts (24 MiB script)", "deploy.scripts", {},
                         prep_large_scripts)


def scenario_params(names: tuple[str, ...] | None = None) -> list[Any]:
    """``pytest.param`` per scenario, skipped with a reason while its task does not exist."""
    import pytest

    params = []
    for sc in SCENARIOS:
        if names is not None and sc.name not in names:
            continue
        missing = sc.missing()
        marks = [pytest.mark.skip(reason=f"task {', '.join(missing)} not in tasks.py yet")] \
            if missing else []
        params.append(pytest.param(sc, id=sc.name, marks=marks))
    return params


# -- golden copies -------------------------------------------------------------------------------
class Golden:
    """A prepared project at ``root`` that each fault starts over from, reset from its
    golden copy at ``golden`` (the dataclasses that use it declare both fields)."""

    root: Path
    golden: Path

    @property
    def tree(self) -> Path:
        return self.root / "state" / "backups"

    def reset(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        shutil.copytree(self.golden, self.root, symlinks=True)


@dataclass
class Prepared(Golden):
    """A prepared project at ``root`` with a golden copy to reset it from, and the baseline:
    what the operation leaves when nothing goes wrong."""

    scenario: Scenario
    root: Path
    golden: Path
    before: inv.Files = field(default_factory=dict)
    new: inv.Files = field(default_factory=dict)
    backups_before: dict[str, str] = field(default_factory=dict)
    last_run: int = 0


    def files(self) -> inv.Files:
        return inv.file_states(self.root)


def prepare(scenario: Scenario, base: Path, run: Runner = run_task) -> Prepared:
    """Build the scenario's project, keep a golden copy, and record the fault-free baseline."""
    root = base / "p"
    scenario.prepare(root, run)
    golden = base / "golden"
    if golden.exists():
        shutil.rmtree(golden)
    shutil.copytree(root, golden, symlinks=True)
    prep = Prepared(scenario, root, golden)
    prep.before = prep.files()
    prep.backups_before = inv.verified_backups(prep.tree)
    prep.last_run = max((int(str(r["id"])) for r in inv.read_runs(prep.tree)), default=0)
    done = run(root, scenario.task, scenario.kwargs)
    if not done.ok:
        raise AssertionError(f"{scenario.name} fails without a fault: {done.stderr}")
    prep.new = prep.files()
    if prep.new == prep.before:
        raise AssertionError(f"{scenario.name} changes nothing; the scenario proves nothing")
    prep.reset()
    return prep


def undoable(tree: Path, run: int) -> bool:
    """Whether ``run`` (found killed if still ``running``) has a change left to undo."""
    state = {int(str(r["id"])): r["state"] for r in inv.read_runs(tree)}[run]
    return state in ("done", "interrupted", "running") and any(
        r["run"] == run and r["state"] in ("applied", "backed_up") and r["undone_by"] is None
        for r in inv.read_rows(tree) or ())


def undo_since(prep: Prepared, run: Runner = run_task) -> list[inv.Violation]:
    """Roll back every run the operation (and its retry) recorded, newest first, with
    ``rollback.release --run``; then the project must equal the pre-operation snapshot."""
    found = []
    runs = [r for r in inv.read_runs(prep.tree) if int(str(r["id"])) > prep.last_run]
    for row in sorted(runs, key=lambda r: -int(str(r["id"]))):
        if not undoable(prep.tree, int(str(row["id"]))):
            continue
        done = run(prep.root, "rollback.release", {"run": int(str(row["id"]))})
        if not done.ok:
            found.append(inv.Violation(inv.RESTORES, f"rollback.release --run {row['id']} "
                                       f"failed: {done.stderr.strip()[-300:]}"))
            return found
    return found + inv.check_restored(prep.before, prep.files())


@contextlib.contextmanager
def fast_scratch(fallback: Path) -> Iterator[Path]:
    """A scratch folder on tmpfs when there is one (fsync is free there, and the in-process
    sweeps test logic, not the disk); removed afterwards."""
    import tempfile

    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="deploy-rel-", dir=shm))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
    else:
        yield fallback


def run_parallel(preps: list[Prepared], jobs: list[Any], fn: Callable[[Prepared, Any], Any]
                 ) -> list[Any]:
    """Run ``fn(prep, job)`` for every job on a thread pool, one prepared project per thread
    (subprocess work only: the in-process runner changes the environment)."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    free: queue.Queue[Prepared] = queue.Queue()
    for prep in preps:
        free.put(prep)

    def work(job: Any) -> Any:
        prep = free.get()
        try:
            return fn(prep, job)
        finally:
            free.put(prep)

    with ThreadPoolExecutor(len(preps)) as pool:
        return list(pool.map(work, jobs))


def workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def holding_lock(proc: subprocess.Popen[str], lock: Path, timeout: float = 60) -> float:
    """Wait until ``proc`` holds the lock (its pid is in the lock file); the time then."""
    pattern = re.compile(rf'"pid": {proc.pid}\b')
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if pattern.search(lock.read_text()):
                break
        except OSError:
            pass
        time.sleep(0.0005)
    return time.monotonic()
