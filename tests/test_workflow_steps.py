"""deploy.yml's and rollback.yml's ``run:`` steps executed here, in order, as a runner would.

A small job runner (``run_job``) reads one job of a workflow and runs its steps with bash
(``bash --noprofile --norc -e -o pipefail``, what ``shell: bash`` runs) against a scratch
project tree, with what Actions gives a step: ``GITHUB_ACTIONS=true``, fresh
``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY``/``GITHUB_ENV``/``GITHUB_PATH`` files per step (read
back the way the runner reads them), ``GITHUB_WORKSPACE`` (the scratch project, also the
working folder), ``RUNNER_TEMP``, ``HOME`` (a scratch home), the workflow's, job's and step's
``env:`` blocks and the inputs as a ``workflow_dispatch`` (or ``release``) event gives them.
Workflow commands (``::error ...::``) are collected from both streams as annotations.

Expressions (``if:``, ``env:`` and ``with:`` values) go through a small evaluator of the
forms the workflows use: literals, ``inputs.x``/``steps.id.outputs.x``/``github.x``/
``vars.x``/``secrets.x``/``runner.x``/``matrix.x``/``env.x`` lookups, ``!``, ``==``/``!=``
(loose, case-insensitive, as GitHub compares), ``&&``/``||`` (returning an operand), and
``always()``/``success()``/``failure()``/``cancelled()``; anything else is an error here, so
the workflows keep to what this file can evaluate honestly.

What is not real: ``uses:`` steps are not run (the workspace already is the checkout; an
upload's ``with:`` is evaluated and kept for the test to check), and the one step with
``id: install`` is replaced: instead of making a venv from constraints.txt it puts this
test venv's ``claude-pm-deploy`` first on ``PATH`` through ``GITHUB_PATH``, behind a
wrapper that logs every call (so a test can tell that nothing ran).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.test_workflows import GITHUB, load_yaml

STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")
SHA = "c0ffee1" + "0" * 33  # the commit every job here runs from (GITHUB_SHA)
TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op>&&|\|\||==|!=|!|\(|\))
  | (?P<path>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*)
)""", re.X)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STATUS_CALL = re.compile(r"\b(?:%s)\(" % "|".join(STATUS_FUNCTIONS))  # noqa: UP031 (a regex)
COMMAND = re.compile(r"^::(?P<kind>[a-z-]+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


# ---- the expression evaluator ------------------------------------------------------------

def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value  # NaN is falsy too


def as_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value.strip() == "":
            return 0.0
        try:
            return float(value)
        except ValueError:
            return float("nan")
    return float("nan")


def equal(left: Any, right: Any) -> bool:
    """GitHub's ``==``: same types compare (strings ignoring case); others as numbers."""
    if type(left) is type(right) and isinstance(left, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right):
        return bool(left == right)
    return as_number(left) == as_number(right)


def text(value: Any) -> str:
    """A value as an ``env:``/``with:`` string gets it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class Evaluator:
    """Recursive descent over one expression's tokens: or, and, not, comparison, primary."""

    def __init__(self, source: str, contexts: dict[str, Any], status: dict[str, bool]):
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(source):
            if source[pos:].strip() == "":
                break
            match = TOKEN.match(source, pos)
            if not match or match.end() == pos:
                raise ValueError(f"cannot evaluate {source!r} at {source[pos:]!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match[kind]))
            pos = match.end()
        self.pos = 0
        self.contexts = contexts
        self.status = status
        self.source = source

    def evaluate(self) -> Any:
        value = self.either()
        if self.pos != len(self.tokens):
            raise ValueError(f"cannot evaluate {self.source!r}: unexpected {self.peek()}")
        return value

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.pos += 1
            return True
        return False

    def either(self) -> Any:
        value = self.both()
        while self.take("||"):
            other = self.both()
            value = value if truthy(value) else other
        return value

    def both(self) -> Any:
        value = self.negation()
        while self.take("&&"):
            other = self.negation()
            value = other if truthy(value) else value
        return value

    def negation(self) -> Any:
        if self.take("!"):
            return not truthy(self.negation())
        return self.comparison()

    def comparison(self) -> Any:
        value = self.primary()
        if self.take("=="):
            return equal(value, self.primary())
        if self.take("!="):
            return not equal(value, self.primary())
        return value

    def primary(self) -> Any:
        token = self.peek()
        if token is None:
            raise ValueError(f"cannot evaluate {self.source!r}: it ends early")
        self.pos += 1
        kind, value = token
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if (kind, value) == ("op", "("):
            inner = self.either()
            if not self.take(")"):
                raise ValueError(f"cannot evaluate {self.source!r}: unbalanced")
            return inner
        if kind == "path" and value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value]
        if kind == "path" and value in STATUS_FUNCTIONS and self.take("("):
            if not self.take(")"):
                raise ValueError(f"{value}() takes no arguments here")
            return self.status[value]
        if kind == "path":
            return self.lookup(value)
        raise ValueError(f"cannot evaluate {self.source!r} at {value!r}")

    def lookup(self, path: str) -> Any:
        parts = re.findall(r"[A-Za-z_][\w-]*|\[\d+\]", path)
        if parts[0] not in self.contexts:
            raise ValueError(f"unknown context {parts[0]!r} in {self.source!r}")
        value: Any = self.contexts[parts[0]]
        for part in parts[1:]:
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part.startswith("["):
                index = int(part[1:-1])
                value = value[index] if index < len(value) else None
            else:
                return None
        return value


def evaluate(source: str, contexts: dict[str, Any], status: dict[str, bool] | None = None) -> Any:
    return Evaluator(source, contexts, status or dict.fromkeys(STATUS_FUNCTIONS, False)).evaluate()


def interpolate(value: Any, contexts: dict[str, Any]) -> str:
    """A string field: each ``${{ }}`` replaced by its value as text (a lone expression too)."""
    return EXPRESSION.sub(lambda m: text(evaluate(m[1], contexts)), text(value))


def condition(source: Any, contexts: dict[str, Any], status: dict[str, bool]) -> bool:
    """An ``if:``: ``success() && (...)`` unless it calls a status function itself."""
    if source is None:
        return status["success"]
    if isinstance(source, bool):
        return source and status["success"]
    inner = str(source).strip()
    if match := re.fullmatch(r"\$\{\{(.*)\}\}", inner, re.S):
        inner = match[1]
    if not STATUS_CALL.search(inner):
        inner = f"success() && ({inner})"
    return truthy(evaluate(inner, contexts, status))


# ---- the job runner ----------------------------------------------------------------------

@dataclass
class StepRun:
    name: str
    id: str | None
    outcome: str  # success, failure or skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    uses: str | None = None
    with_: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class JobRun:
    steps: list[StepRun]
    summary: str
    annotations: list[tuple[str, dict[str, str], str]]
    calls: list[list[str]]
    ran: bool = True

    @property
    def succeeded(self) -> bool:
        return self.ran and all(s.outcome != "failure" for s in self.steps)

    def step(self, key: str) -> StepRun:
        return next(s for s in self.steps if key in (s.id, s.name))

    def errors(self) -> list[tuple[dict[str, str], str]]:
        return [(props, msg) for kind, props, msg in self.annotations if kind == "error"]


def read_key_values(path: Path) -> dict[str, str]:
    """``GITHUB_OUTPUT``/``GITHUB_ENV`` syntax: ``name=value`` lines and
    ``name<<DELIMITER`` ... ``DELIMITER`` blocks."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"{path}: {name}'s block never ends with {delimiter!r}")
            i += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise ValueError(f"{path}: unreadable line {line!r}")
    return values


def annotations(output: str) -> list[tuple[str, dict[str, str], str]]:
    found = []
    for line in output.splitlines():
        if match := COMMAND.match(line):
            props = dict(p.split("=", 1) for p in (match["props"] or "").split(",") if "=" in p)
            found.append((match["kind"], props, match["message"]))
    return found


WRAPPER = """#!/bin/sh
# Test stand-in for the install step's venv: logs each call, then runs the command. These
# tests contact no host: the real toolkit is never given --hosts (a stand-in may be).
printf '%s\\0' "$@" >> "$CLAUDE_PM_TEST_CALLS"
printf '\\n' >> "$CLAUDE_PM_TEST_CALLS"
for arg in "$@"; do
    if [ "$arg" = --hosts ] && [ "{guard}" = yes ]; then
        echo "test wrapper: no host is contacted from these tests" >&2
        exit 99
    fi
done
exec "{real}" "$@"
"""


@dataclass
class Runner:
    """One scratch machine: workspace, home and runner temp, and the install stand-in."""

    root: Path
    workspace: Path
    home: Path

    def __post_init__(self) -> None:
        self.temp = self.root / "runner-temp"
        self.shim = self.root / "shim"
        self.calls = self.root / "calls"
        self.machine_env: dict[str, str] = {}
        self.shim.mkdir(exist_ok=True)
        self.use_toolkit(Path(sys.executable).with_name("claude-pm-deploy"))

    def use_toolkit(self, real: Path, *, guard: bool = True) -> None:
        """The command the install stand-in's wrapper runs: this venv's (which may never be
        given ``--hosts``), or a stand-in."""
        wrapper = self.shim / "claude-pm-deploy"
        wrapper.write_text(WRAPPER.replace("{real}", str(real))
                           .replace("{guard}", "yes" if guard else "no"))
        wrapper.chmod(0o755)

    def contexts(self, event: str, inputs: dict[str, Any], release: dict[str, Any] | None,
                 vars_: dict[str, str], secrets: dict[str, str],
                 matrix: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {"inputs": inputs} if event == "workflow_dispatch" else {}
        if release is not None:
            payload["release"] = release
        return {
            "inputs": inputs if event == "workflow_dispatch" else {},
            "github": {"event_name": event, "event": payload, "job": "", "run_id": "4242",
                       "run_attempt": "1", "sha": SHA, "ref_name": "main",
                       "repository": "owner/claude-pm", "workspace": str(self.workspace),
                       "server_url": "https://github.com", "workflow": ""},
            "vars": vars_, "secrets": secrets, "matrix": matrix,
            "runner": {"temp": str(self.temp), "os": "Linux", "arch": "X64"},
            "steps": {}, "env": {}, "job": {"status": "success"},
        }

    def job_runs(self, workflow: str, job_id: str, *, event: str = "workflow_dispatch",
                 inputs: dict[str, Any] | None = None, release: dict[str, Any] | None = None,
                 vars_: dict[str, str] | None = None,
                 secrets: dict[str, str] | None = None) -> bool:
        """Whether the job's own ``if:`` lets it start for this event."""
        doc = load_yaml(GITHUB / "workflows" / workflow)
        contexts = self.contexts(event, self.given(doc, event, inputs), release, vars_ or {},
                                 secrets or {}, {})
        return condition(doc["jobs"][job_id].get("if"), contexts,
                         {"always": True, "success": True, "failure": False, "cancelled": False})

    @staticmethod
    def given(doc: Any, event: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
        """The inputs as a dispatch gives them: each declared one, its default when not given
        (booleans as booleans)."""
        if event != "workflow_dispatch":
            return {}
        declared = doc["on"]["workflow_dispatch"].get("inputs") or {}
        values = {name: spec.get("default", False if spec.get("type") == "boolean" else "")
                  for name, spec in declared.items()}
        unknown = set(inputs or {}) - set(declared)
        assert not unknown, f"not inputs of this workflow: {unknown}"
        return {**values, **(inputs or {})}

    def run(self, workflow: str, job_id: str, *, event: str = "workflow_dispatch",
            inputs: dict[str, Any] | None = None, release: dict[str, Any] | None = None,
            vars_: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
            matrix: dict[str, Any] | None = None, stop_after: str | None = None,
            env: dict[str, str] | None = None) -> JobRun:
        """Run one job's steps in order; ``env`` is the runner machine's own environment
        (what a self-hosted runner's service passes on), beneath every ``env:`` block."""
        doc = load_yaml(GITHUB / "workflows" / workflow)
        job = doc["jobs"][job_id]
        if matrix is None and "strategy" in job:
            matrix = {k: v[0] for k, v in job["strategy"]["matrix"].items()}
        contexts = self.contexts(event, self.given(doc, event, inputs), release, vars_ or {},
                                 secrets or {}, matrix or {})
        contexts["github"]["job"] = job_id
        if self.temp.exists():  # the runner empties RUNNER_TEMP around every job
            subprocess.run(["rm", "-rf", "--", str(self.temp)], check=True)
        self.temp.mkdir()
        self.calls.write_bytes(b"")
        if not self.job_if(job, contexts):
            return JobRun([], "", [], [], ran=False)
        self.machine_env = dict(env or {})
        workflow_env = {k: interpolate(v, contexts) for k, v in (doc.get("env") or {}).items()}
        job_env = {**workflow_env,
                   **{k: interpolate(v, contexts) for k, v in (job.get("env") or {}).items()}}
        extra_env: dict[str, str] = {}
        paths: list[str] = []
        results: list[StepRun] = []
        summaries: list[str] = []
        found: list[tuple[str, dict[str, str], str]] = []
        for n, step in enumerate(job["steps"], 1):
            name = step.get("name") or step.get("uses") or f"step {n}"
            failed = any(r.outcome == "failure" for r in results)
            status = {"always": True, "success": not failed, "failure": failed,
                      "cancelled": False}
            contexts["env"] = {**job_env, **extra_env}
            if not condition(step.get("if"), contexts, status):
                results.append(StepRun(name, step.get("id"), "skipped"))
            else:
                env = {**job_env, **extra_env, **{k: interpolate(v, contexts) for k, v in
                                                  (step.get("env") or {}).items()}}
                result = self.step(step, name, env, paths, contexts)
                results.append(result)
                summary = self.temp / "_step_summary"
                if summary.exists():
                    summaries.append(summary.read_text(encoding="utf-8"))
                    summary.unlink()
                env_file = self.temp / "_env"
                extra_env.update(read_key_values(env_file))
                env_file.unlink(missing_ok=True)
                path_file = self.temp / "_path"
                if path_file.exists():
                    paths[:0] = reversed(path_file.read_text().split())
                    path_file.unlink()
                found += annotations(result.stdout) + annotations(result.stderr)
            last = results[-1]
            if last.id:
                contexts["steps"][last.id] = {"outputs": last.outputs, "outcome": last.outcome,
                                              "conclusion": last.outcome}
            if stop_after is not None and name == stop_after:
                break
        calls = [line.split("\0")[:-1] for line in
                 self.calls.read_text(encoding="utf-8").split("\n") if line]
        return JobRun(results, "".join(summaries), found, calls)

    @staticmethod
    def job_if(job: Any, contexts: dict[str, Any]) -> bool:
        return condition(job.get("if"), contexts,
                         {"always": True, "success": True, "failure": False, "cancelled": False})

    def step(self, step: Any, name: str, env: dict[str, str], paths: list[str],
             contexts: dict[str, Any]) -> StepRun:
        if "uses" in step:
            with_ = {k: interpolate(v, contexts) for k, v in (step.get("with") or {}).items()}
            return StepRun(name, step.get("id"), "success", uses=step["uses"], with_=with_)
        script = step["run"]
        assert not EXPRESSION.search(script), f"{name}: an expression inside run:"
        if step.get("id") == "install":  # the one replaced step (module docstring)
            script = f'echo "{self.shim}" >> "$GITHUB_PATH"\n'
        files = {"GITHUB_OUTPUT": "_output", "GITHUB_STEP_SUMMARY": "_step_summary",
                 "GITHUB_ENV": "_env", "GITHUB_PATH": "_path"}
        for file in files.values():
            (self.temp / file).unlink(missing_ok=True)
            (self.temp / file).touch()
        full_env = {
            "PATH": os.pathsep.join([*paths, "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.home), "LANG": "C.UTF-8", "CI": "true",
            "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_NAME": contexts["github"]["event_name"],
            "GITHUB_SHA": contexts["github"]["sha"],
            "GITHUB_REF_NAME": contexts["github"]["ref_name"],
            "GITHUB_REPOSITORY": contexts["github"]["repository"],
            "GITHUB_RUN_ID": contexts["github"]["run_id"],
            "GITHUB_RUN_ATTEMPT": contexts["github"]["run_attempt"],
            "GITHUB_SERVER_URL": contexts["github"]["server_url"],
            "GITHUB_JOB": contexts["github"]["job"],
            "RUNNER_TEMP": str(self.temp), "RUNNER_OS": "Linux",
            "CLAUDE_PM_TEST_CALLS": str(self.calls),
            **self.machine_env,
            **{k: str(self.temp / f) for k, f in files.items()},
            **env,
        }
        script_file = self.temp / "_script.sh"
        script_file.write_text(script)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail",
                               str(script_file)], cwd=self.workspace, env=full_env,
                              capture_output=True, text=True, timeout=120, check=False)
        script_file.unlink()
        outputs = read_key_values(self.temp / "_output")
        (self.temp / "_output").unlink()
        return StepRun(name, step.get("id"), "success" if done.returncode == 0 else "failure",
                       outputs, done.stdout, done.stderr, done.returncode, env=env)


# ---- a scratch project -------------------------------------------------------------------

CONFIG = """\
[tool.deploy]

[tool.deploy.scripts]
source = "bin"
target = "~/.local/bin"

[tool.deploy.versions]
dir = "."

[tool.deploy.framework]
template = "templates/CLAUDE.md"
install_to = "~/.claude-pm/framework/CLAUDE.md"
parents = []
"""


@pytest.fixture
def runner(tmp_path: Path, scratch_home: Path) -> Runner:
    """A checkout (the scratch project: two scripts, a framework template, a version file)
    and a runner whose home is the scratch home, so the tree is ``~/.claude-pm/backups``."""
    workspace = tmp_path / "workspace"
    (workspace / "bin").mkdir(parents=True)
    (workspace / "templates").mkdir()
    (workspace / "pyproject.toml").write_text(CONFIG)
    (workspace / "MEMORY_VERSION").write_text("003\n")
    (workspace / "templates" / "CLAUDE.md").write_text("memory {{ versions.memory }}\n")
    for name in ("hello", "bye"):
        script = workspace / "bin" / name
        script.write_text(f"#!/bin/sh\necho {name}\n")
        script.chmod(0o755)
    return Runner(tmp_path, workspace, scratch_home)


def tar_members(path: Path) -> dict[str, int]:
    with tarfile.open(path) as archive:
        return {m.name: stat.S_IMODE(m.mode) for m in archive.getmembers()}


def tree_modes(home: Path) -> dict[str, int]:
    """Every folder and file of ``~/.claude-pm/backups`` (named from ``home``) and its mode."""
    tree = home / ".claude-pm" / "backups"
    return {str(p.relative_to(home)): stat.S_IMODE(p.lstat().st_mode)
            for p in [tree, *tree.rglob("*")]}


def explain(job: JobRun) -> str:
    """What each step did, for an assertion's message."""
    return "\n".join(f"{s.name}: {s.outcome} rc={s.returncode} outputs={s.outputs}\n"
                     f"{s.stdout}{s.stderr}" for s in job.steps)


ARTIFACTS = "claude-pm-artifacts"


def check_artifacts(runner: Runner, job: JobRun, upload: str, runs: list[int]) -> None:
    """The collect step left history.json (these runs) and a 0600 tar of the tree whose
    members and modes are the tree's, and the upload step was pointed at them."""
    out = runner.temp / ARTIFACTS
    history = json.loads((out / "history.json").read_text())
    assert [run["id"] for run in history["runs"]] == runs
    tar = out / "backups.tar"
    assert stat.S_IMODE(tar.stat().st_mode) == 0o600
    assert tar_members(tar) == tree_modes(runner.home)
    assert job.step(upload).with_["path"] == f"{runner.temp}/{ARTIFACTS}/"


def test_a_deploy_that_changes(runner: Runner) -> None:
    """A dispatched deploy of everything: green, the toolkit's outputs say what changed and
    how to undo it, the summary too, and the artifacts hold the history and the tree."""
    job = runner.run("deploy.yml", "runner")

    assert job.succeeded, explain(job)
    assert job.errors() == []
    out = job.step("deploy").outputs
    assert (out["outcome"], out["changed"], out["run"]) == ("changed", "3", "1")
    assert "rollback.release --run 1" in out["undo"]
    assert "rollback.release --run 1" in job.summary
    assert (runner.home / ".local" / "bin" / "hello").read_text() == "#!/bin/sh\necho hello\n"
    assert job.calls[:2] == [["versions.check"], ["deploy.all", "--wait", "300"]]
    check_artifacts(runner, job, "upload history and backup tree", [1])


def test_an_unchanged_deploy_is_green_and_says_so(runner: Runner) -> None:
    """The same release deployed again (a release event this time): green, outcome
    ``unchanged``, nothing changed, no undo command."""
    runner.run("deploy.yml", "runner")

    job = runner.run("deploy.yml", "runner", event="release",
                     release={"prerelease": False, "tag_name": "v1"})

    assert job.succeeded, explain(job)
    assert job.errors() == []
    out = job.step("deploy").outputs
    assert (out["outcome"], out["changed"]) == ("unchanged", "0")
    assert not out.get("undo")
    assert "nothing to do" in job.summary.lower()
    assert job.calls[1] == ["deploy.all", "--wait", "300"]


def test_a_dry_run_writes_nothing(runner: Runner) -> None:
    """``dry_run`` reaches the toolkit as ``--dry-run``: outcome ``dry-run``, no target
    written, no tree made (so no tar), and still the history artifact."""
    job = runner.run("deploy.yml", "runner", inputs={"category": "scripts", "dry_run": True})

    assert job.succeeded, explain(job)
    assert job.errors() == []
    assert job.step("deploy").outputs["outcome"] == "dry-run"
    assert "dry run" in job.summary.lower() and "rollback.release" not in job.summary
    assert job.calls[1] == ["deploy.scripts", "--wait", "300", "--dry-run"]
    assert not (runner.home / ".local").exists()
    assert not (runner.home / ".claude-pm").exists()  # the collect step only reads too
    assert not (runner.temp / ARTIFACTS / "backups.tar").exists()
    assert json.loads((runner.temp / ARTIFACTS / "history.json").read_text())["runs"] == []


def test_a_blocked_deploy_is_red_and_still_leaves_its_artifacts(runner: Runner) -> None:
    """A rendered target edited by hand blocks the next deploy (exit 3): the job is red with
    the toolkit's annotation and a ``blocked`` outcome, and the ``always()`` steps still
    collect the history and the tree for the artifact."""
    runner.run("deploy.yml", "runner")
    (runner.home / ".claude-pm" / "framework" / "CLAUDE.md").write_text("edited by hand\n")
    (runner.workspace / "templates" / "CLAUDE.md").write_text("memory, new\n")

    job = runner.run("deploy.yml", "runner")

    assert not job.succeeded
    deploy = job.step("deploy")
    assert (deploy.returncode, deploy.outputs["outcome"]) == (3, "blocked")
    assert [p.get("title") for p, _ in job.errors()] == ["deploy"]
    assert job.step("collect history and backup tree").outcome == "success"
    assert (runner.home / ".claude-pm" / "framework" / "CLAUDE.md").read_text() == \
        "edited by hand\n"
    check_artifacts(runner, job, "upload history and backup tree", [1])


def test_a_rollback_that_undoes_is_green(runner: Runner) -> None:
    """After a deploy, the default rollback (release, latest run): the targets are gone again,
    outcome ``changed``, the verdict step passes, and the artifacts show both runs."""
    runner.run("deploy.yml", "runner")

    job = runner.run("rollback.yml", "runner")

    assert job.succeeded, explain(job)
    assert job.errors() == []
    out = job.step("rollback").outputs
    assert out["outcome"] == "changed" and int(out["changed"]) == 3
    assert "undid run 1" in job.summary and "rollback.release --run 2" in job.summary
    assert not (runner.home / ".local" / "bin" / "hello").exists()
    assert ["rollback.release", "--wait", "300"] in job.calls
    check_artifacts(runner, job, "upload history and backup tree", [2, 1])


def test_a_rollback_by_run_id_of_one_category(runner: Runner) -> None:
    """``run_id`` goes to ``rollback.release --run``; a category's rollback steps back one run
    of that category only."""
    runner.run("deploy.yml", "runner")

    by_run = runner.run("rollback.yml", "runner", inputs={"run_id": "1", "dry_run": True})
    scripts = runner.run("rollback.yml", "runner", inputs={"category": "scripts"})

    assert by_run.succeeded, explain(by_run)
    assert ["rollback.release", "--wait", "300", "--run", "1", "--dry-run", "--json"] \
        in by_run.calls
    assert by_run.step("rollback").outputs["planned"] == "3"
    assert by_run.step("rollback").outputs["outcome"] == "dry-run"
    assert scripts.succeeded, explain(scripts)
    assert not (runner.home / ".local" / "bin" / "hello").exists()
    assert (runner.home / ".claude-pm" / "framework" / "CLAUDE.md").exists()


def test_a_dry_run_rollback_with_nothing_to_undo_is_red_too(runner: Runner) -> None:
    """A dry run is green only when its plan would undo something: after the deploy was
    rolled back, the same dry run plans nothing and the job fails."""
    runner.run("deploy.yml", "runner")
    runner.run("rollback.yml", "runner", inputs={"category": "scripts"})

    job = runner.run("rollback.yml", "runner", inputs={"category": "scripts", "dry_run": True})

    assert job.step("rollback").outputs["planned"] == "0"
    assert not job.succeeded
    assert any("nothing was rolled back" in msg for _, msg in job.errors())


def test_a_rollback_with_nothing_to_undo_fails_the_job(runner: Runner) -> None:
    """Nothing deployed yet: the toolkit exits 0 (nothing to do), but the job is red, with an
    error annotation saying nothing was rolled back."""
    job = runner.run("rollback.yml", "runner", inputs={"category": "scripts"})

    assert not job.succeeded
    assert job.step("rollback").outcome == "success"
    assert job.step("fail unless something was rolled back").outcome == "failure"
    assert any("nothing was rolled back" in msg for _, msg in job.errors())
    assert "nothing to do" in job.summary.lower()
    assert "### nothing was rolled back" in job.summary


@pytest.mark.parametrize(("commit", "undone"), [
    pytest.param(SHA[:7].upper(), True, id="the-deploys-commit"),
    pytest.param("deadbee", False, id="another-commit"),
])
def test_a_rollback_by_commit(runner: Runner, commit: str, undone: bool) -> None:
    """``commit`` (a prefix, any case) undoes the latest run made from that commit; a commit
    no run came from undoes nothing, and the job is red."""
    runner.run("deploy.yml", "runner")

    job = runner.run("rollback.yml", "runner", inputs={"commit": commit})

    assert job.succeeded is undone, explain(job)
    assert ["rollback.release", "--wait", "300", "--commit", commit.lower()] in job.calls
    assert (runner.home / ".local" / "bin" / "hello").exists() is not undone


CONTRADICTIONS = [
    pytest.param({"category": "scripts", "run_id": "3"}, "choose category release",
                 id="run-id-with-a-category"),
    pytest.param({"category": "templates", "commit": "abc1234"}, "choose category release",
                 id="commit-with-a-category"),
    pytest.param({"backup_id": "7"}, "not release", id="backup-id-with-release"),
    pytest.param({"run_id": "3", "commit": "abc1234"}, "not both", id="run-id-and-commit"),
    pytest.param({"category": "scripts", "run_id": "3", "backup_id": "7"},
                 "choose category release", id="run-id-and-backup-id"),
    pytest.param({"run_id": "0"}, "digits only", id="run-id-zero"),
    pytest.param({"commit": "xyz"}, "hex digits", id="commit-not-hex"),
]


@pytest.mark.parametrize(("inputs", "message"), CONTRADICTIONS)
def test_contradictory_inputs_are_refused_before_anything_runs(
        runner: Runner, inputs: dict[str, Any], message: str) -> None:
    """Inputs that contradict each other (or are malformed) fail the first step with a clear
    annotation and summary; no later step runs and the toolkit is never called (so nothing,
    least of all the latest run, is undone)."""
    job = runner.run("rollback.yml", "runner", inputs=inputs)

    assert job.steps[0].outcome == "failure" and job.steps[0].returncode == 2
    assert {s.outcome for s in job.steps[1:]} == {"skipped"}
    assert job.calls == []
    assert [(p.get("title"), message in m) for p, m in job.errors()] == [("rollback inputs", True)]
    assert "rollback refused" in job.summary


INJECTIONS = [
    pytest.param("run_id", "1; touch {marker}", id="semicolon"),
    pytest.param("run_id", "$(touch {marker})", id="command-substitution"),
    pytest.param("backup_id", "`touch {marker}`", id="backticks"),
    pytest.param("run_id", "1\ntouch {marker}", id="newline"),
    pytest.param("commit", "abcd$(touch {marker})", id="commit"),
    pytest.param("category", "release; touch {marker}", id="category"),
    pytest.param("run_id", "1\n::error::forged", id="workflow-command"),
]


@pytest.mark.parametrize(("name", "value"), INJECTIONS)
def test_an_injection_attempt_in_an_input_is_refused_and_not_executed(
        runner: Runner, tmp_path: Path, name: str, value: str) -> None:
    """Shell code in an input is data: the check refuses it (exit 2), the marker file it
    would create never appears, the toolkit is never called, and the value is not echoed
    (so it cannot forge a workflow command either)."""
    marker = tmp_path / "pwned"

    job = runner.run("rollback.yml", "runner", inputs={name: value.format(marker=marker)})

    assert job.steps[0].returncode == 2, explain(job)
    assert not marker.exists()
    assert job.calls == []
    assert [m for _, m in job.errors() if "forged" in m or "touch" in m] == []


def test_an_injection_attempt_in_the_deploy_category_is_refused(
        runner: Runner, tmp_path: Path) -> None:
    """A category that is not one of the choices (possible through the API) fails the first
    step: no later step runs, the toolkit is never called, and nothing it carries runs."""
    marker = tmp_path / "pwned"

    job = runner.run("deploy.yml", "runner", inputs={"category": f"all; touch {marker}"})

    assert job.steps[0].returncode == 2
    assert {s.outcome for s in job.steps[1:]} == {"skipped"}
    assert not marker.exists()
    assert job.calls == []
    assert [p.get("title") for p, _ in job.errors()] == ["deploy inputs"]
    assert "deploy refused" in job.summary


SECRETS = {"DEPLOY_SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n"
                             "-----END OPENSSH PRIVATE KEY-----",
           "DEPLOY_SSH_KNOWN_HOSTS": "web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey"}


@pytest.mark.parametrize("workflow", ["deploy.yml", "rollback.yml"])
def test_the_ssh_job_writes_key_and_known_hosts_private(runner: Runner, workflow: str) -> None:
    """The SSH job's setup: ``~/.ssh`` 0700, key, known_hosts and config 0600, the secrets'
    bytes as given, and a config that checks host keys strictly."""
    job = runner.run(workflow, "ssh", inputs={"hosts": "web1"}, secrets=SECRETS,
                     stop_after="ssh key and known hosts")

    assert job.succeeded, explain(job)
    ssh = runner.home / ".ssh"
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in ssh.iterdir()} == \
        {"id_deploy": 0o600, "known_hosts": 0o600, "config": 0o600}
    assert (ssh / "id_deploy").read_text() == SECRETS["DEPLOY_SSH_KEY"] + "\n"
    assert (ssh / "known_hosts").read_text() == SECRETS["DEPLOY_SSH_KNOWN_HOSTS"] + "\n"
    config = (ssh / "config").read_text()
    assert "StrictHostKeyChecking yes" in config and "UserKnownHostsFile" in config


def test_the_ssh_job_without_its_secrets_stops_with_a_clear_error(runner: Runner) -> None:
    """Without the environment's secrets the SSH setup fails, naming them: nothing deploys
    and no host is contacted, not even for the history."""
    job = runner.run("deploy.yml", "ssh", inputs={"hosts": "web1"})

    assert not job.succeeded
    assert job.step("deploy").outcome == "skipped"
    assert job.step("collect history").outcome == "skipped"
    assert job.calls == [["versions.check"]]
    assert any("DEPLOY_SSH_KEY" in m for _, m in job.errors())


@pytest.mark.parametrize("hosts", ["web1;touch {marker}", "web1 $(touch {marker})",
                                   "web1,-oProxyCommand=x"])
def test_bad_hosts_are_refused_before_any_connection(
        runner: Runner, tmp_path: Path, hosts: str) -> None:
    """A hosts input that is not a list of ssh names fails the first step of the SSH deploy
    and the SSH rollback: no host is contacted, and what it carries never runs."""
    marker = tmp_path / "pwned"
    value = hosts.format(marker=marker)

    deploy = runner.run("deploy.yml", "ssh", inputs={"hosts": value}, secrets=SECRETS)
    rollback = runner.run("rollback.yml", "ssh", inputs={"hosts": value}, secrets=SECRETS)

    assert deploy.steps[0].returncode == 2, explain(deploy)
    assert rollback.steps[0].returncode == 2, explain(rollback)
    assert deploy.calls == rollback.calls == []
    assert not marker.exists()


JOBS = [
    pytest.param("deploy.yml", {"event": "release", "release": {"prerelease": False}},
                 {"runner"}, id="release"),
    pytest.param("deploy.yml", {"event": "release", "release": {"prerelease": True}},
                 set(), id="pre-release"),
    pytest.param("deploy.yml", {"event": "release", "release": {"prerelease": False},
                                "vars_": {"DEPLOY_SSH_HOSTS": "production"}},
                 {"ssh"}, id="release-ssh-variable"),
    pytest.param("deploy.yml", {}, {"runner"}, id="dispatch"),
    pytest.param("deploy.yml", {"inputs": {"hosts": "web1,web2"}}, {"ssh"}, id="dispatch-hosts"),
    pytest.param("rollback.yml", {}, {"runner"}, id="rollback"),
    pytest.param("rollback.yml", {"inputs": {"hosts": "production"}}, {"ssh"},
                 id="rollback-hosts"),
]


@pytest.mark.parametrize(("workflow", "event", "expected"), JOBS)
def test_which_jobs_start(runner: Runner, workflow: str, event: dict[str, Any],
                          expected: set[str]) -> None:
    """The jobs' ``if:``: pre-releases deploy nowhere; the SSH job runs when hosts are named
    (input, else the DEPLOY_SSH_HOSTS variable), the self-hosted job otherwise."""
    jobs = load_yaml(GITHUB / "workflows" / workflow)["jobs"]

    started = {job for job in jobs if runner.job_runs(workflow, job, **event)}

    assert started == expected


@pytest.mark.parametrize(("source", "contexts", "expected"), [
    pytest.param("inputs.x || vars.Y || ''", {"inputs": {}, "vars": {}}, "", id="fallbacks"),
    pytest.param("inputs.x || 'all'", {"inputs": {"x": "scripts"}}, "scripts", id="or-value"),
    pytest.param("(inputs.x || '') == ''", {"inputs": {}}, True, id="null-or-empty"),
    pytest.param("null == ''", {}, True, id="loose-equality"),
    pytest.param("'ABC' == 'abc'", {}, True, id="case-insensitive"),
    pytest.param("!github.event.release.prerelease", {"github": {"event": {}}}, True,
                 id="missing-is-null"),
    pytest.param("a.b && 'yes'", {"a": {"b": 0.0}}, 0.0, id="and-returns-operand"),
])
def test_the_evaluator_follows_githubs_rules(source: str, contexts: dict[str, Any],
                                            expected: Any) -> None:
    """The few expression forms the workflows use evaluate as GitHub documents them."""
    assert evaluate(source, contexts) == expected


@pytest.mark.parametrize("source", ["contains(inputs.x, 'y')", "inputs.x ==", "fromJSON(x)",
                                    "inputs.*"])
def test_the_evaluator_refuses_what_it_does_not_know(source: str) -> None:
    """A form outside the supported few is an error, not a guess."""
    with pytest.raises(ValueError, match=r"cannot evaluate|unknown context|ends early"):
        evaluate(source, {"inputs": {}})


def test_step_files_are_read_as_the_runner_reads_them(tmp_path: Path) -> None:
    """``name=value`` lines and ``name<<EOF`` blocks, as GITHUB_OUTPUT and GITHUB_ENV hold."""
    path = tmp_path / "out"
    path.write_text("run=7\nundo<<EOF_1\nline one\nline=two\nEOF_1\nchanged=0\n")

    assert read_key_values(path) == {"run": "7", "undo": "line one\nline=two", "changed": "0"}


FAKE_FLEET = """#!/usr/bin/env python3
# Stands in for `claude-pm-deploy ... --hosts ... --json` (no sshd here): prints the
# documented many-hosts document, {"hosts": {HOST: <that host's document or an error>}}.
import json, os, sys
if sys.argv[1] == "history":
    print(json.dumps({"hosts": {h: {"runs": []} for h in ("web1", "web2")}}))
    sys.exit(0)
print(json.dumps({"hosts": json.loads(os.environ["FAKE_HOSTS"])}))
"""


@pytest.mark.parametrize(("hosts", "green", "warned"), [
    pytest.param({"web1": {"run": 9, "undoes": 8, "changes": [{"action": "delete"}]},
                  "web2": {"run": 4, "undoes": 3, "changes": [{"action": "update"}]}},
                 True, None, id="both-undone"),
    pytest.param({"web1": {"run": 9, "undoes": 8, "changes": [{"action": "delete"}]},
                  "web2": {"run": None, "undoes": None, "changes": []}},
                 True, "web2", id="one-had-nothing"),
    pytest.param({"web1": {"run": None, "undoes": None, "changes": []},
                  "web2": {"run": None, "undoes": None, "changes": []}},
                 False, "web1,web2", id="nothing-anywhere"),
])
def test_the_ssh_rollback_counts_what_each_host_undid(
        runner: Runner, tmp_path: Path, hosts: dict[str, Any], green: bool,
        warned: str | None) -> None:
    """The SSH rollback reads each host's changes from the ``--json`` document: green when
    any host undid something, a warning naming the hosts that had nothing to undo, red when
    none did. (The toolkit is a fake printing the documented shape: the fleet itself is
    tested against real sshd by tests/test_hosts.py.)"""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (the ubuntu-24.04 image this job runs on has it)")
    fake = tmp_path / "fake-claude-pm-deploy"
    fake.write_text(FAKE_FLEET)
    fake.chmod(0o755)
    runner.use_toolkit(fake, guard=False)

    job = runner.run("rollback.yml", "ssh", inputs={"hosts": "web1,web2"}, secrets=SECRETS,
                     env={"FAKE_HOSTS": json.dumps(hosts)})

    assert job.succeeded is green, explain(job)
    assert ["rollback.release", "--wait", "300", "--hosts", "web1,web2", "--parallel", "4",
            "--json"] in job.calls
    warnings = [m for kind, _, m in job.annotations if kind == "warning"]
    assert warnings == ([f"nothing to roll back on: {warned}"] if warned else [])


def test_a_config_error_is_annotated_at_its_line_in_the_checkout(runner: Runner) -> None:
    """An unknown key stops the versions gate (exit 2) with an annotation at that key's line,
    its path relative to GITHUB_WORKSPACE; the deploy step never runs."""
    config = runner.workspace / "pyproject.toml"
    config.write_text(CONFIG + "\n[tool.deploy.backup]\nretention_dayz = 3\n")
    line = config.read_text().splitlines().index("retention_dayz = 3") + 1

    job = runner.run("deploy.yml", "runner")

    assert job.step("versions gate").returncode == 2
    assert job.step("deploy").outcome == "skipped"
    props, message = job.errors()[0]  # the collect step meets the same error after it
    assert (props.get("file"), props.get("line"), props.get("title")) == \
        ("pyproject.toml", str(line), "versions.check")
    assert "retention_dayz" in message


def test_the_real_toolkit_is_never_sent_to_a_host_from_here(runner: Runner) -> None:
    """The SSH deploy run whole against this venv's toolkit stops at the wrapper (exit 99)
    instead of connecting anywhere: these tests' traffic stays on this machine."""
    job = runner.run("deploy.yml", "ssh", inputs={"hosts": "web1"}, secrets=SECRETS)

    assert job.step("deploy").returncode == 99
    assert "no host is contacted" in job.step("deploy").stderr
    assert job.step("collect history").returncode == 99
