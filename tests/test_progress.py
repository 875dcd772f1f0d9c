"""Progress, --quiet and --verbose through the real CLI (issue 12): on a terminal a run over
the delay shows ``[n/N] doing category/key`` on stderr, rewritten with ``\\r`` and cleared at
the end; piped stderr never gets it; ``--quiet`` keeps only the summary line."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Project

SCRIPTS = 40


@pytest.fixture
def many(project: Project) -> Project:
    project.write({f"bin/tool{i:03d}": f"#!/bin/sh\necho {i}\n" for i in range(SCRIPTS)})
    return project


def on_terminal(project: Project, *args: str, env: dict[str, str],
                wrap: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); (exit, stdout, stderr)."""
    master, slave = pty.openpty()
    full_env = {**os.environ, "DEPLOY_CONFIG": str(project.config_path), **env}
    with subprocess.Popen(
            [*wrap, sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
            cwd=project.root, env=full_env, stdout=subprocess.PIPE, stderr=slave,
            stdin=subprocess.DEVNULL, text=True) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        assert proc.stdout is not None
        out = proc.stdout.read()
        code = proc.wait(timeout=120)
    return code, out, b"".join(chunks).decode()


NOW = {"DEPLOY_PROGRESS_DELAY": "0"}  # show from the first tick: no run is timed here


def test_a_terminal_sees_progress_rewritten_and_cleared(many: Project) -> None:
    """Each tick redraws one line with \\r; the line is cleared before the summary."""
    code, out, err = on_terminal(many, "deploy.scripts", env=NOW)

    assert code == 0, err
    assert f"[{SCRIPTS}/{SCRIPTS}] writing scripts/tool{SCRIPTS - 1:03d}" in err
    assert "planning scripts/tool000" in err
    assert "\n" not in err  # one line, rewritten in place
    assert err.endswith("\r\x1b[K"), repr(err[-40:])
    assert out.startswith("run 1: deploy, 40 change(s)\n")


def test_piped_stderr_gets_no_progress(many: Project) -> None:
    """Without a terminal there is no progress, even past the delay."""
    done = many.ok("deploy.scripts", env=NOW)

    assert done.stderr == ""
    assert "[" not in done.stderr


def test_quiet_keeps_only_the_summary_line(many: Project) -> None:
    """--quiet: no progress on the terminal, no per-target lines; the summary stays, and a
    dry run says how many would change."""
    dry = many.ok("deploy.scripts", "--dry-run", "--quiet")
    code, out, err = on_terminal(many, "deploy.scripts", "--quiet", env=NOW)
    again = many.ok("rollback.scripts", "--quiet")
    many.ok("deploy.scripts", "--quiet")
    copied = many.ok("backups.create", "--category", "scripts", "--quiet")

    assert copied.stdout == f"run 4: backup, {SCRIPTS} target(s)\n"
    assert dry.stdout == f"would change {SCRIPTS} target(s), 0 unchanged\n"
    assert code == 0
    assert err == ""
    assert out == f"run 1: deploy, {SCRIPTS} change(s)\n"
    assert again.stdout == f"run 2: rollback, {SCRIPTS} change(s)\n"


def test_an_error_line_is_not_glued_to_the_progress_line(many: Project) -> None:
    """A run that fails after progress was drawn clears the line first: its error line
    starts a line of its own."""
    many.ok("deploy.scripts")
    (many.tree / "index.sqlite").chmod(0o666)  # untrusted: refused with one error line

    code, _out, err = on_terminal(many, "deploy.scripts", env=NOW)

    assert code == 2
    assert "error: " in err
    before = err[:err.index("error: ")]
    assert before == "" or before.endswith("\r\x1b[K"), repr(before[-40:])


def test_verbose_is_the_troubleshooting_log(many: Project) -> None:
    """--verbose (-v) prints the store's debug lines like DEPLOY_LOG=debug, and no progress."""
    long = many.ok("deploy.scripts", "--name", "tool000", "--verbose")
    many.ok("rollback.scripts")
    short = many.ok("deploy.scripts", "--name", "tool000", "-v")
    many.ok("rollback.scripts")
    by_env = many.ok("deploy.scripts", "--name", "tool000", env={"DEPLOY_LOG": "debug"})
    plain = many.ok("rollback.scripts")

    for done in (long, short, by_env):
        assert "debug: writing" in done.stderr, done.stderr
        assert "tool000" in done.stderr
    # The first run made the tree and the target folder; the log names each folder made.
    assert f"debug: creating folder {many.target / 'bin'}" in long.stderr
    assert f"debug: creating folder {many.tree / 'scripts'}" in long.stderr
    assert "debug: creating folder" not in short.stderr  # every folder was there by then
    assert plain.stderr == ""
    assert [line.split(" ", 2)[1] for line in short.stderr.splitlines()] == \
        [line.split(" ", 2)[1] for line in by_env.stderr.splitlines()]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_no_change_path_makes_no_system_call_for_progress(many: Project,
                                                              tmp_path: Path) -> None:
    """Progress costs a run under the delay nothing: the no-change run makes exactly the
    file and terminal system calls (stat, open, ioctl: isatty) it makes with --quiet, which
    has no progress at all, on a terminal too (memory calls vary, and writes differ by the
    lines --quiet leaves out)."""
    many.ok("deploy.scripts")
    counts = []
    for extra in ((), ("--quiet",), (), ("--quiet",)):
        log = tmp_path / f"strace-{len(counts)}.txt"
        code, _out, _err = on_terminal(many, "deploy.scripts", *extra, env={},
                                       wrap=("strace", "-f", "-c", "-o", str(log)))
        assert code == 0
        counts.append(syscalls(log))

    assert counts[0] == counts[1], (counts[0], counts[1])
    assert counts[2] == counts[3]


WATCHED = {"ioctl", "newfstatat", "statx", "fstat", "stat", "lstat", "openat", "readlink",
           "getdents64", "access", "faccessat2"}


def syscalls(log: Path) -> dict[str, int]:
    """strace -c's table, the calls of :data:`WATCHED` only: system call -> calls."""
    table: dict[str, int] = {}
    for line in log.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] in WATCHED:
            table[fields[-1]] = int(fields[3])
    assert "ioctl" in table and "openat" in table, table
    return table


def test_backups_verify_shows_its_progress_too(many: Project) -> None:
    """A reading task that takes long (re-hashing every backup) shows progress the same way."""
    many.ok("deploy.scripts")
    many.write({f"bin/tool{i:03d}": f"#!/bin/sh\necho {i} again\n" for i in range(SCRIPTS)})
    many.ok("deploy.scripts")

    code, out, err = on_terminal(many, "backups.verify", env=NOW)

    assert code == 0, err
    assert f"[{SCRIPTS}/{SCRIPTS}] verifying scripts/tool{SCRIPTS - 1:03d}" in err
    assert err.endswith("\r\x1b[K")
    assert "\r" not in out
