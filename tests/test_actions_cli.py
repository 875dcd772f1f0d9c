"""Under GitHub Actions (issue 14): every outcome of a writing task reaches the step summary
and the step outputs, errors are annotations at their file and line titled with the task,
and a failing ``--json`` task still prints one JSON document.

Each test runs the real CLI in a subprocess with the variables Actions sets, the summary
and the outputs pointing at scratch files.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NO_FRAMEWORK_CONFIG, REPO, Project

SHA = "0123456789abcdef0123456789abcdef01234567"
TEMPLATE = """
[[tool.deploy.templates]]
id = "app"
source = "tpl/app.conf.j2"
target = "target/conf/app.conf"

[tool.deploy.context]
project_name = "demo"
"""


def script(version: str) -> str:
    return f"#!/bin/sh\necho {version}\n"


def actions_env(project: Project) -> dict[str, str]:
    """The variables a GitHub-hosted job sets, the files in a scratch folder."""
    files = project.root.parent
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(files / "summary.md"),
            "GITHUB_OUTPUT": str(files / "output.txt"), "GITHUB_WORKSPACE": str(project.root),
            "GITHUB_SHA": SHA, "GITHUB_REF_NAME": "main",
            "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "org/repo",
            "GITHUB_RUN_ID": "4242"}


def parse_outputs(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it: ``name=value`` and ``name<<DELIM`` heredocs;
    a name written twice keeps its last value."""
    values: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"heredoc {name} never closed")
            values[name] = "\n".join(body)
        else:
            name, value = line.split("=", 1)
            values[name] = value
    return values


class Actions:
    """One project run under Actions: each call gets fresh summary and output files."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.env = actions_env(project)

    def run(self, *args: str, env: dict[str, str] | None = None
            ) -> tuple[subprocess.CompletedProcess[str], str, dict[str, str]]:
        for key in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
            Path(self.env[key]).write_text("")
        done = self.project.invoke(*args, env={**self.env, **(env or {})})
        summary = Path(self.env["GITHUB_STEP_SUMMARY"]).read_text()
        outputs = parse_outputs(Path(self.env["GITHUB_OUTPUT"]).read_text())
        return done, summary, outputs


@pytest.fixture
def gha(project: Project) -> Actions:
    project.write({"bin/tool": script("v1")})
    return Actions(project)


def annotations(stderr: str, kind: str = "error") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"::{kind} ")]


def test_a_changing_run_reports_its_changes_and_how_to_undo_them(gha: Actions) -> None:
    """A run that changed something: outcome ``changed``, its id and count, the table of
    changes and the exact undo command, in the summary and the outputs."""
    done, summary, outputs = gha.run("deploy.scripts")

    assert done.returncode == 0, done.stderr
    undo = f"invoke --search-root {REPO} rollback.release --run 1"
    assert outputs == {"run": "1", "changed": "1", "outcome": "changed", "undo": undo}
    assert summary.startswith("### deploy.scripts: run 1, 1 change(s)\n")
    target = gha.project.target / "bin" / "tool"
    assert f"| create | `{target}` | `-` | 1 |" in summary
    assert f"```sh\n{undo}\n```" in summary
    assert "From commit `0123456789ab`, ref `main`, " \
           "[Actions run](https://github.com/org/repo/actions/runs/4242)." in summary


def test_the_undo_command_undoes_the_run(gha: Actions) -> None:
    """The ``undo`` output, run as it stands (``invoke`` being this interpreter's), restores
    what the run changed and is itself a changing run."""
    gha.project.ok("deploy.scripts")
    gha.project.write({"bin/tool": script("v2")})
    _done, _summary, outputs = gha.run("deploy.scripts")
    argv = shlex.split(outputs["undo"])
    assert argv[0] == "invoke"

    undone = subprocess.run([sys.executable, "-m", "invoke", *argv[1:]], cwd=gha.project.root,
                            env={**os.environ, "DEPLOY_CONFIG": str(gha.project.config_path)},
                            capture_output=True, text=True, timeout=120, check=False)

    assert undone.returncode == 0, undone.stderr
    assert (gha.project.target / "bin/tool").read_text() == script("v1")
    states = {r["id"]: r["state"] for r in gha.project.json("history")["runs"]}
    assert states == {1: "done", 2: "undone", 3: "done"}


def test_a_rollback_offers_to_undo_itself(gha: Actions) -> None:
    """A rollback that restored something is a changing run: its undo names its own run."""
    gha.project.ok("deploy.scripts")

    done, summary, outputs = gha.run("rollback.scripts")

    assert done.returncode == 0, done.stderr
    assert outputs["outcome"] == "changed" and outputs["run"] == "2"
    assert outputs["undo"].endswith("rollback.release --run 2")
    assert "It undid run 1." in summary
    assert summary.startswith("### rollback.scripts: run 2, 1 change(s)")


def test_nothing_to_do_is_reported_unchanged(gha: Actions) -> None:
    """A second run with nothing to change: outcome ``unchanged``, no run, nothing to undo."""
    gha.project.ok("deploy.scripts")

    done, summary, outputs = gha.run("deploy.scripts")

    assert done.returncode == 0
    assert outputs == {"run": "", "changed": "0", "outcome": "unchanged", "undo": ""}
    assert summary.startswith("### deploy.scripts: nothing to do\n")
    assert "rollback.release" not in summary


def test_nothing_to_roll_back_is_unchanged(gha: Actions) -> None:
    """A rollback with nothing left to undo is ``unchanged`` too, with zero changes."""
    done, summary, outputs = gha.run("rollback.release")

    assert done.returncode == 0
    assert outputs["outcome"] == "unchanged" and outputs["changed"] == "0"
    assert summary.startswith("### rollback.release: nothing to do")


@pytest.mark.parametrize("flag", ["--dry-run", "-n"])
def test_a_dry_run_lists_the_plan_and_writes_nothing(gha: Actions, flag: str) -> None:
    """A dry run: outcome ``dry-run``, the planned changes listed, no run, no tree."""
    gha.project.configure(base=NO_FRAMEWORK_CONFIG)  # the whole release, framework aside
    done, summary, outputs = gha.run("deploy", flag)

    assert done.returncode == 0, done.stderr
    assert outputs == {"run": "", "changed": "0", "outcome": "dry-run", "undo": ""}
    assert summary.startswith("### deploy: dry run, nothing written\n")
    assert f"| create | `{gha.project.target / 'bin' / 'tool'}` | `-` | - |" in summary
    assert not gha.project.state.exists()


def test_a_conflict_is_blocked_with_its_targets(gha: Actions) -> None:
    """A hand-edited rendered file: exit 3, outcome ``blocked``, the target in the summary's
    table and in the annotation, titled with the task."""
    project = gha.project
    project.configure(TEMPLATE)
    project.write({"tpl/app.conf.j2": "name = {{ project_name }}\n"})
    project.ok("deploy.templates")
    target = project.target / "conf/app.conf"
    target.write_text("edited by hand\n")

    done, summary, outputs = gha.run("deploy.templates")

    assert done.returncode == 3
    assert outputs == {"run": "", "changed": "0", "outcome": "blocked", "undo": ""}
    assert summary.startswith("### deploy.templates: blocked (exit 3)\n")
    assert "| target | problem |" in summary and f"| `{target}` |" in summary
    (line,) = annotations(done.stderr)
    assert line.startswith("::error file=target/conf/app.conf,title=deploy.templates::")


def corrupt_backup(project: Project) -> Path:
    """Two deploys of the script, then its one backup's bytes flipped (a rollback must
    fail); the backup."""
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    project.ok("deploy.scripts")
    (backup,) = (project.tree / "scripts").iterdir()
    backup.write_text("flipped\n")
    return backup


def test_a_failed_rollback_is_failed(gha: Actions) -> None:
    """A backup that no longer verifies stops a rollback (exit 1): outcome ``failed``."""
    backup = corrupt_backup(gha.project)

    done, summary, outputs = gha.run("rollback.scripts")

    assert done.returncode == 1
    assert outputs == {"run": "", "changed": "0", "outcome": "failed", "undo": ""}
    assert summary.startswith("### rollback.scripts: failed (exit 1)\n")
    assert str(backup) in summary
    (annotation,) = annotations(done.stderr)
    assert annotation.startswith("::error file=state/backups/scripts/tool_backup_")
    assert ",title=rollback.scripts::" in annotation


@contextmanager
def a_changed_script_under_a_held_lock(project: Project) -> Iterator[None]:
    """A deployed script changed since, and the tree's lock held by this process meanwhile:
    a deploy now has something to do and must exit 4."""
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    fd = os.open(project.tree / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_a_held_lock_is_locked(gha: Actions) -> None:
    """Another run holds the lock: exit 4, outcome ``locked``, nothing written."""
    project = gha.project
    with a_changed_script_under_a_held_lock(project):
        done, summary, outputs = gha.run("deploy.scripts")

    assert done.returncode == 4
    assert outputs == {"run": "", "changed": "0", "outcome": "locked", "undo": ""}
    assert summary.startswith("### deploy.scripts: lock held by another run (exit 4)\n")
    assert (project.target / "bin/tool").read_text() == script("v1")


def test_an_undefined_variable_points_at_its_line(gha: Actions) -> None:
    """A template's undefined variable: the annotation names the template, relative to the
    workspace, and the line of the first undefined name."""
    project = gha.project
    project.configure(TEMPLATE)
    project.write({"tpl/app.conf.j2": "name = {{ project_name }}\n\nport = {{ port }}\n"
                                      "host = {{ host }}\n"})

    done, _summary, outputs = gha.run("deploy.templates")

    assert done.returncode == 2
    (line,) = annotations(done.stderr)
    assert line.startswith("::error file=tpl/app.conf.j2,line=3,title=deploy.templates::")
    assert "undefined variable 'port'" in line and "undefined variable 'host'" in line
    assert outputs["outcome"] == "failed"


@pytest.mark.parametrize(("config", "below"), [
    pytest.param('[tool.deploy.backup]\nretention_days = "soon"\n', 1, id="wrong-type"),
    pytest.param("[tool.deploy.backup]\nmax_backups_per_type = 0\n", 1, id="out-of-range"),
    pytest.param("[tool.deploy.backup]\n\nretention_dayz = 3\n", 2, id="unknown-key"),
    pytest.param("[tool.deploy.backup]\nretention_days = \n", 1, id="toml-syntax"),
    pytest.param("[[tool.deploy.templates]]\nid = 'a'\nsource = 's'\ntarget = 't'\n"
                 "[[tool.deploy.templates]]\nid = 'b/c'\nsource = 's'\ntarget = 'u'\n", 5,
                 id="second-template-entry"),
])
def test_a_config_error_points_at_its_key(gha: Actions, config: str, below: int) -> None:
    """A bad config value, an unknown key, a TOML syntax error, a bad array-of-tables entry:
    the annotation names the config file and the line of the key (or of its entry)."""
    gha.project.configure(config)
    lines = gha.project.config_path.read_text().splitlines()
    line = lines.index(config.splitlines()[0]) + 1 + below

    done, _summary, outputs = gha.run("deploy.scripts")

    assert done.returncode == 2
    (annotation,) = annotations(done.stderr)
    assert annotation.startswith(f"::error file=deploy.toml,line={line},title=deploy.scripts::")
    assert outputs["outcome"] == "failed"


def test_a_file_outside_the_workspace_gets_no_file_property(gha: Actions) -> None:
    """A config outside ``$GITHUB_WORKSPACE``: GitHub places no annotation on such a file,
    so the annotation carries only its title."""
    gha.project.configure("[tool.deploy.backup]\nretention_days = -1\n")

    done, _summary, _outputs = gha.run("deploy.scripts",
                                       env={"GITHUB_WORKSPACE": str(gha.project.root / "bin")})

    (annotation,) = annotations(done.stderr)
    assert annotation.startswith("::error title=deploy.scripts::")


def test_an_error_naming_a_file_points_at_it(gha: Actions) -> None:
    """An error whose message starts with a file of the workspace points at that file."""
    gha.project.write({"versions/MEMORY_VERSION": "not a version\n"})

    done, summary, _outputs = gha.run("versions.bump", "memory")

    assert done.returncode == 2
    (annotation,) = annotations(done.stderr)
    assert annotation.startswith("::error file=versions/MEMORY_VERSION,title=versions.bump::")
    assert summary.startswith("### versions.bump: failed (exit 2)")


def test_long_listings_fold_into_groups_and_skips_warn(gha: Actions) -> None:
    """Twelve scripts: the per-target lines go into one ``::group::``; a file of the scripts
    folder that is not a script is a ``::warning``."""
    gha.project.write({f"bin/tool{i:02d}": script("v1") for i in range(12)})
    gha.project.write({"bin/tool.swp": "editor leftover\n"})

    done, summary, _outputs = gha.run("deploy.scripts")

    lines = done.stdout.splitlines()
    assert lines.count("::endgroup::") == 1
    start = lines.index("::group::13 change(s)")
    end = lines.index("::endgroup::")
    assert sum("created  " in line for line in lines[start:end]) == 13
    (warning,) = annotations(done.stderr, "warning")
    assert warning.startswith("::warning file=bin/tool.swp,title=deploy.scripts::")
    assert "tool.swp" in warning
    assert "> [!WARNING]" in summary


def test_nothing_is_written_for_actions_outside_actions(project: Project) -> None:
    """Without ``GITHUB_ACTIONS=true`` the summary and output files stay untouched."""
    project.write({"bin/tool": script("v1")})
    env = {k: v for k, v in actions_env(project).items() if k != "GITHUB_ACTIONS"}
    Path(env["GITHUB_OUTPUT"]).write_text("")

    done = project.invoke("deploy.scripts", env=env)

    assert done.returncode == 0
    assert Path(env["GITHUB_OUTPUT"]).read_text() == ""
    assert not Path(env["GITHUB_STEP_SUMMARY"]).exists()
    assert "::" not in done.stderr


# --- --json failures: one document --------------------------------------------------------

def json_failure(done: subprocess.CompletedProcess[str], code: int) -> dict[str, Any]:
    assert done.returncode == code, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)  # exactly one document
    assert document["error"]["exit_code"] == code
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1
    assert document["error"]["message"] == error_lines[0].removeprefix("error: ")
    return document


def test_json_error_document_exit_1(gha: Actions) -> None:
    """A rollback stopped by a corrupt backup: the document names the error, exit 1."""
    backup = corrupt_backup(gha.project)

    document = json_failure(gha.project.invoke("rollback.scripts", "--json"), 1)

    assert str(backup) in document["error"]["message"]
    assert document["task"] == "rollback.scripts"


def test_json_error_document_exit_2(gha: Actions) -> None:
    """A bad name, a bad config: exit 2 with the document; a template error carries its
    file and line."""
    project = gha.project
    bad_name = json_failure(project.invoke("deploy.scripts", "--name", "../x", "--json"), 2)
    project.configure(TEMPLATE)
    project.write({"tpl/app.conf.j2": "{{ nope }}\n"})
    undefined = json_failure(project.invoke("deploy.templates", "-j"), 2)
    out_of_range = json_failure(project.invoke("history", "--limit", "-1", "--json"), 2)

    assert "path separator" in bad_name["error"]["message"]
    assert bad_name["run"] is None
    assert undefined["error"]["file"] == str(project.root / "tpl/app.conf.j2")
    assert undefined["error"]["line"] == 1
    assert "--limit" in out_of_range["error"]["message"]


def test_json_error_document_exit_3_lists_the_conflicts(gha: Actions) -> None:
    """A conflict: the document lists each blocking target and its problem."""
    project = gha.project
    project.configure(TEMPLATE)
    project.write({"tpl/app.conf.j2": "name = {{ project_name }}\n"})
    project.ok("deploy.templates")
    target = project.target / "conf/app.conf"
    target.write_text("edited by hand\n")

    document = json_failure(project.invoke("deploy.templates", "--json"), 3)

    (conflict,) = document["conflicts"]
    assert conflict["target"] == str(target)
    assert conflict["problem"].startswith(f"{target}: edited since run 1")


def test_json_error_document_exit_3_for_drift(gha: Actions) -> None:
    """Drift stops a rollback: the drifted target is in the document's conflicts."""
    project = gha.project
    project.ok("deploy.scripts")
    (project.target / "bin/tool").write_text("changed by hand\n")

    document = json_failure(project.invoke("rollback.scripts", "--json"), 3)

    assert [c["target"] for c in document["conflicts"]] == [str(project.target / "bin/tool")]


def test_json_error_document_exit_4(gha: Actions) -> None:
    """A held lock: exit 4, one document."""
    project = gha.project
    with a_changed_script_under_a_held_lock(project):
        done = project.invoke("deploy.scripts", "--json")

    document = json_failure(done, 4)
    assert document["run"] is None


def test_a_json_document_already_printed_is_not_doubled(gha: Actions) -> None:
    """``backups.verify --json`` prints its document, then exits 1 for a problem: stdout
    still holds exactly one document."""
    project = gha.project
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    project.ok("deploy.scripts")
    (backup,) = (project.tree / "scripts").iterdir()
    backup.unlink()

    done = project.invoke("backups.verify", "--json")

    assert done.returncode == 1
    assert json.loads(done.stdout)["problems"]


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (its /proc fd links)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False  # gone meanwhile
    found = False
    for fd in fds:
        try:
            found = found or os.readlink(fd) == str(path)
        except OSError:
            continue  # closed meanwhile
    return found


def test_an_interrupted_run_is_reported(gha: Actions) -> None:
    """SIGINT (how Actions cancels a job) while a run waits for the lock: exit 130, outcome
    ``failed``, the summary says interrupted, nothing written."""
    import signal
    import time

    project = gha.project
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    lock = project.tree / "lock"
    for key in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
        Path(gha.env[key]).write_text("")
    env = {**os.environ, "DEPLOY_CONFIG": str(project.config_path), **gha.env}
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        waiting = subprocess.Popen(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO), "deploy.scripts",
             "--wait", "600"], cwd=project.root, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            # It waits once it holds the lock file open (deploy.store.lock.hold).
            for _ in range(6000):
                if holds_open(waiting.pid, lock) or waiting.poll() is not None:
                    break
                time.sleep(0.01)
            waiting.send_signal(signal.SIGINT)
            _out, err = waiting.communicate(timeout=120)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()
    finally:
        os.close(fd)

    assert waiting.returncode == 130, err
    outputs = parse_outputs(Path(gha.env["GITHUB_OUTPUT"]).read_text())
    assert outputs == {"run": "", "changed": "0", "outcome": "failed", "undo": ""}
    summary = Path(gha.env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("### deploy.scripts: interrupted (exit 130)\n")
    assert (project.target / "bin/tool").read_text() == script("v1")


PROGRAM = "import sys; from deploy_tasks.program import main; main()"


def test_the_installed_command_names_itself_in_the_undo(gha: Actions) -> None:
    """Through ``claude-pm-deploy`` (its ``main`` run from the checkout) the undo is that
    command with the ``--config`` it was given, and running it undoes the run."""
    project = gha.project
    env = {**os.environ, **gha.env, "PYTHONPATH": str(REPO)}
    env.pop("DEPLOY_CONFIG", None)
    for key in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
        Path(gha.env[key]).write_text("")

    def program(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", PROGRAM, *args], cwd=project.root,
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)

    done = program("--config", "deploy.toml", "deploy.scripts")
    outputs = parse_outputs(Path(gha.env["GITHUB_OUTPUT"]).read_text())
    argv = shlex.split(outputs["undo"])
    undone = program(*argv[1:])

    assert done.returncode == 0, done.stderr
    assert outputs["undo"] == "claude-pm-deploy --config deploy.toml rollback.release --run 1"
    assert undone.returncode == 0, undone.stderr
    assert not (project.target / "bin/tool").exists()


def test_a_kept_conflict_is_a_warning(gha: Actions) -> None:
    """``--on-conflict keep`` keeps a hand edit: the run succeeds (it accepted the file), and
    the kept target is a ``::warning`` and a warning in the summary."""
    project = gha.project
    project.configure(TEMPLATE)
    project.write({"tpl/app.conf.j2": "name = {{ project_name }}\n"})
    project.ok("deploy.templates")
    target = project.target / "conf/app.conf"
    target.write_text("edited by hand\n")

    done, summary, outputs = gha.run("deploy.templates", "--on-conflict", "keep")

    assert done.returncode == 0, done.stderr
    (warning,) = annotations(done.stderr, "warning")
    assert warning.startswith("::warning file=target/conf/app.conf,title=deploy.templates::")
    assert warning.endswith("skipped (kept)")
    assert f"> {target}: skipped (kept)" in summary
    assert outputs["outcome"] == "changed" and outputs["undo"].endswith("--run 2")
    assert target.read_text() == "edited by hand\n"


@pytest.mark.parametrize("args", [
    pytest.param(("deploy.scripts", "--nope"), id="unknown-flag"),
    pytest.param(("deploy.scripts", "--wait", "abc"), id="bad-number"),
])
def test_a_parse_error_of_a_writing_task_is_failed(gha: Actions, args: tuple[str, ...]) -> None:
    """A writing task's flags that do not parse: exit 2, the annotation titled with the
    task, and the job still gets its summary and ``outcome=failed``."""
    done, summary, outputs = gha.run(*args)

    assert done.returncode == 2
    (annotation,) = annotations(done.stderr)
    assert annotation.startswith("::error title=deploy.scripts::deploy.scripts: ")
    assert outputs == {"run": "", "changed": "0", "outcome": "failed", "undo": ""}
    assert summary.startswith("### deploy.scripts: failed (exit 2)")


def test_a_parse_error_of_a_reading_task_writes_no_outputs(gha: Actions) -> None:
    """``history --nope``: the annotation, but no summary or outputs (it writes nothing)."""
    done, summary, outputs = gha.run("history", "--nope")

    assert done.returncode == 2
    assert annotations(done.stderr)[0].startswith("::error title=history::")
    assert summary == "" and outputs == {}


def test_a_prune_that_removed_backups_says_so_without_a_run(gha: Actions) -> None:
    """backups.prune records no run of its own: its summary says what it did to the tree
    (it said "recorded in run None") and gives no undo command."""
    project = gha.project
    project.configure("\n[tool.deploy.backup]\nmax_backups_per_type = 1\nretention_days = 0\n")
    for k in range(4):
        project.write({"bin/tool": script(f"v{k + 2}")})
        project.ok("deploy.scripts")

    done, summary, outputs = gha.run("backups.prune")

    assert done.returncode == 0, done.stderr
    assert outputs["outcome"] == "changed" and outputs["run"] == "" and outputs["undo"] == ""
    assert "made to the backup tree." in summary and "run None" not in summary
