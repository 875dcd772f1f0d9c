"""Every run records where it came from (issue 14): the commit, the ref and the Actions run,
shown by ``history``; ``rollback.release --commit SHA`` undoes the latest run made from it;
an index from before these columns upgrades."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from deploy.provenance import checkout
from tests.conftest import Project, assert_one_error_line

SHA_A = "aaaa1111" + "0" * 32
SHA_B = "bbbb2222" + "0" * 32


def script(version: str) -> str:
    return f"#!/bin/sh\necho {version}\n"


def from_commit(sha: str, ref: str = "main", run_id: str = "77") -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_SHA": sha, "GITHUB_REF_NAME": ref,
            "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "org/repo",
            "GITHUB_RUN_ID": run_id}


def deploy_from(project: Project, name: str, sha: str) -> None:
    """Deploy the script ``name`` alone, as a job checked out at ``sha`` would."""
    project.write({f"bin/{name}": script(name)})
    project.ok("deploy.scripts", "--name", name, env=from_commit(sha))


def test_history_shows_the_actions_commit_ref_and_run(project: Project) -> None:
    """Under Actions a run records GITHUB_SHA, GITHUB_REF_NAME and the run's page;
    ``history --json`` has them, ``history`` shows the short commit, the ref and the URL."""
    deploy_from(project, "tool", SHA_A)

    (run,) = project.json("history")["runs"]
    text = project.ok("history").stdout

    assert run["commit"] == SHA_A and run["ref"] == "main"
    assert run["ci_url"] == "https://github.example/org/repo/actions/runs/77"
    assert "aaaa111 main" in text
    assert "https://github.example/org/repo/actions/runs/77" in text


def test_outside_actions_the_checkout_head_is_recorded(project: Project) -> None:
    """Outside Actions a run records the HEAD of the git checkout holding the config, and
    its branch (read from .git, not from Actions' variables even when they are set)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(project.root), *args], env=env, check=True,
                              capture_output=True, text=True, timeout=60).stdout.strip()

    git("init", "-q", "-b", "release")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    project.write({"bin/tool": script("v1")})

    project.ok("deploy.scripts", env={"GITHUB_SHA": SHA_B})  # not under Actions: ignored
    git("checkout", "-q", "--detach")
    project.write({"bin/tool": script("v2")})
    project.ok("deploy.scripts")

    second, first = project.json("history")["runs"]
    assert (first["commit"], first["ref"], first["ci_url"]) == (head, "release", None)
    assert (second["commit"], second["ref"]) == (head, None)


def test_no_checkout_records_null(project: Project) -> None:
    """Outside a checkout (and outside Actions) the commit and ref are null: no failure."""
    project.write({"bin/tool": script("v1")})

    project.ok("deploy.scripts")

    (run,) = project.json("history")["runs"]
    assert (run["commit"], run["ref"], run["ci_url"]) == (None, None, None)


@pytest.mark.parametrize("layout", ["loose", "packed", "worktree", "detached"])
def test_checkout_reads_git_without_git(tmp_path: Path, layout: str) -> None:
    """``.git`` read by hand: a loose ref, a packed ref, a worktree's ``gitdir:`` file with
    its ``commondir``, a detached HEAD."""
    repo = tmp_path / "repo"
    git_dir = repo / ".git"
    (git_dir / "refs/heads").mkdir(parents=True)
    work = repo / "sub" / "deeper"
    work.mkdir(parents=True)
    if layout == "loose":
        (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
        (git_dir / "refs/heads/main").write_text(SHA_A + "\n")
    elif layout == "packed":
        (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
        (git_dir / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA_A} refs/heads/main\n")
    elif layout == "detached":
        (git_dir / "HEAD").write_text(SHA_A + "\n")
    else:
        (git_dir / "refs/heads/main").write_text(SHA_A + "\n")
        wt_git = git_dir / "worktrees" / "wt"
        wt_git.mkdir(parents=True)
        (wt_git / "HEAD").write_text("ref: refs/heads/main\n")
        (wt_git / "commondir").write_text("../..\n")
        work = tmp_path / "wt"
        work.mkdir()
        (work / ".git").write_text(f"gitdir: {wt_git}\n")

    commit, branch = checkout(work)

    assert commit == SHA_A
    assert branch == (None if layout == "detached" else "main")


def test_checkout_of_a_broken_git_dir(tmp_path: Path) -> None:
    """A HEAD naming a ref that is not there, or holding garbage: (None, ...), no error."""
    git_dir = tmp_path / "repo" / ".git"
    git_dir.mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/gone\n")
    garbage = tmp_path / "other" / ".git"
    garbage.mkdir(parents=True)
    (garbage / "HEAD").write_bytes(b"\xff\x00 not a head")

    assert checkout(tmp_path / "repo") == (None, "gone")
    assert checkout(tmp_path / "other") == (None, None)


def test_rollback_by_commit_undoes_the_latest_run_from_it(project: Project) -> None:
    """Runs from commits A, B, A: ``--commit`` with a prefix of A undoes the second run from
    A; again, the first (each the latest not-undone one made from A); B's run stays."""
    deploy_from(project, "tool_a", SHA_A)
    deploy_from(project, "tool_b", SHA_B)
    project.write({"versions/MEMORY_VERSION": "001\n"})
    project.ok("versions.bump", "memory", env=from_commit(SHA_A))

    first = project.json("rollback.release", "--commit", SHA_A[:6])
    second = project.json("rollback.release", "--commit", SHA_A[:4].upper())

    assert first["undoes"] == 3 and second["undoes"] == 1
    states = {r["id"]: r["state"] for r in project.json("history")["runs"]}
    assert states[1] == "undone" and states[2] == "done" and states[3] == "undone"
    assert (project.root / "versions/MEMORY_VERSION").read_text() == "001\n"
    assert not (project.target / "bin/tool_a").exists()
    assert (project.target / "bin/tool_b").exists()


def test_rollback_by_commit_refuses_ambiguous_and_unknown(project: Project) -> None:
    """A prefix two commits share is exit 2 naming both; a prefix of none is exit 2; so
    are fewer than 4 hex digits and ``--commit`` with ``--run``. Nothing is undone."""
    deploy_from(project, "tool_a", "abcd1111" + "1" * 32)
    deploy_from(project, "tool_b", "abcd2222" + "2" * 32)

    ambiguous = project.invoke("rollback.release", "--commit", "abcd")
    unknown = project.invoke("rollback.release", "--commit", "ffff")
    short = project.invoke("rollback.release", "--commit", "abc")
    not_hex = project.invoke("rollback.release", "--commit", "main")
    both = project.invoke("rollback.release", "--commit", "abcd1", "--run", "1")

    assert ambiguous.returncode == 2
    assert_one_error_line(ambiguous.stderr, "ambiguous", "abcd1111", "abcd2222")
    assert unknown.returncode == 2
    assert_one_error_line(unknown.stderr, "--commit ffff", "no run")
    assert short.returncode == 2 and not_hex.returncode == 2
    assert_one_error_line(short.stderr, "4 to 64 hex digits")
    assert both.returncode == 2
    assert_one_error_line(both.stderr, "--commit and --run")
    assert [r["state"] for r in project.json("history")["runs"]] == ["done", "done"]


def test_rollback_by_commit_dry_run_names_the_run(project: Project) -> None:
    """``--dry-run --commit`` names the run it would undo and writes nothing."""
    deploy_from(project, "tool_a", SHA_A)
    deploy_from(project, "tool_b", SHA_B)

    plan = project.json("rollback.release", "--commit", SHA_A[:8], "--dry-run")

    assert plan["undoes"] == 1 and plan["run"] is None
    assert (project.target / "bin/tool_a").exists()


def test_an_index_without_the_columns_upgrades(project: Project) -> None:
    """An index written before runs recorded their provenance: read as null, and the next
    writing run adds the columns and records its own."""
    deploy_from(project, "tool_a", SHA_A)
    index = project.tree / "index.sqlite"
    with closing(sqlite3.connect(index)) as db:
        for column in ("git_commit", "git_ref", "ci_url"):
            db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        db.commit()

    old = project.json("history")["runs"]
    deploy_from(project, "tool_b", SHA_B)
    new = project.json("history")["runs"]

    assert [(r["commit"], r["ref"], r["ci_url"]) for r in old] == [(None, None, None)]
    assert [r["commit"] for r in new] == [SHA_B, None]
    with closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert {"git_commit", "git_ref", "ci_url"} <= columns
