"""Offline checks of ``.github/workflows``: each file against GitHub's workflow schema,
every ``invoke``/``claude-pm-deploy`` command a ``run:`` step calls against the tasks this
checkout defines, and what a platform engineer checks before signing a workflow off (issue
14): actions pinned by commit, no expression pasted into a script, permissions, concurrency
and timeouts, the inputs, the runner labels, the constraints, shellcheck over every script,
actionlint where installed, Dependabot's config. ``tests/test_workflow_steps.py`` runs the
steps themselves.

The schema is the one vendored inside check-jsonschema (``--builtin-schema``), so nothing is
downloaded; the tasks and their flags come from Invoke's own loader and parser contexts, read
in a subprocess (``tasks.py`` calls ``gc.freeze()``, which in here would hide unclosed
connections from the other tests' ResourceWarning checks).

The shell is read, never run: a command line is split into words, GitHub expressions
(``${{ ... }}``) are replaced by each value they can take (a choice input's options, a
boolean's ``true``/``false``, or the string literals inside), a ``$VAR`` set in the step's
``env:`` is expanded the same way, and a ``"${args[@]}"`` array gets the items of every
``args=(...)``/``args+=(...)`` line whose ``if [ "$VAR" = word ]`` guard can hold.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
# Any request check-jsonschema tried would go to this closed local port and fail the test.
NO_NETWORK = {name: "http://127.0.0.1:9" for name in
              ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
               "all_proxy")} | {"NO_PROXY": "", "no_proxy": ""}
OPAQUE = "<expr>"  # an expression whose value cannot be known: as a task name, it fails

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
LITERAL = re.compile(r"'((?:[^']|'')*)'")
INPUT = re.compile(r"\s*(?:github\.event\.)?inputs\.([\w-]+)\s*")
ARRAY_LINE = re.compile(r"(?:if (?P<guard>.+?); then )?(?P<name>\w+)\+?=\((?P<items>.*)\)"
                        r"(?:; fi)?")
ARRAY_USE = re.compile(r"\$\{(\w+)\[@\]\}")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
ASSIGNMENT = re.compile(r"\w+=.*")
REDIRECT = re.compile(r"\d*(?:>|<|&>)")
WRAPPERS = {"sudo", "env", "exec", "time", "nice", "command"}
KEYWORDS = {"then", "else", "do", "!", "{"}  # may stand before a command on its line
SEPARATORS = {";", "&", "&&", "|", "||", "(", ")"}

META = """
import json, sys
from invoke import Collection, FilesystemLoader, Program
from invoke.parser.context import to_flag

def flags(ctx):
    out = {to_flag(n): arg.takes_value for arg in ctx.args.values() for n in arg.names}
    return {**out, **{flag: False for flag in ctx.inverse_flags}}

module, _ = FilesystemLoader(start=sys.argv[1]).load()
tasks = {}
for ctx in Collection.from_module(module).to_contexts():
    for name in (ctx.name, *ctx.aliases):
        tasks[name] = {"task": ctx.name, "flags": flags(ctx),
                       "positional": len(ctx.positional_args)}
from deploy_tasks.program import program
print(json.dumps({"core": {"invoke": flags(Program().initial_context),
                           "claude-pm-deploy": flags(program.initial_context)},
                  "tasks": tasks}))
"""


@functools.cache
def invoke_meta() -> dict[str, Any]:
    """Every task name and alias of this checkout's collection with the flags it takes
    (flag -> takes a value), and Invoke's core flags, from Invoke's own parser contexts."""
    done = subprocess.run([sys.executable, "-c", META, str(REPO)], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=60)
    meta: dict[str, Any] = json.loads(done.stdout)
    return meta


@dataclass
class Step:
    """One ``run:`` step: its script and what its expressions and variables can be."""

    where: str
    script: str
    env: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    """One task of one concrete ``invoke`` command line, as Invoke would parse it."""

    where: str
    line: str
    task: str
    flags: list[str]


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path)  # YAML 1.2: ``on`` stays a string


def steps(path: Path) -> Iterator[Step]:
    doc = load_yaml(path)
    triggers = doc.get("on") or {}
    dispatch = triggers.get("workflow_dispatch") if isinstance(triggers, dict) else None
    inputs = (dispatch or {}).get("inputs") or {}
    for job_id, job in (doc.get("jobs") or {}).items():
        for n, step in enumerate(job.get("steps") or [], 1):
            if "run" not in step:
                continue
            env = {**(doc.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
            yield Step(f"{path.name}: job {job_id}, step {step.get('name', n)!r}", step["run"],
                       {k: str(v) for k, v in env.items()}, inputs)


def expression_values(inner: str, inputs: dict[str, Any]) -> list[str]:
    """What ``${{ inner }}`` can evaluate to, as far as it matters for a command line: for
    ``a || b || 'c'`` (the fallback form the workflows use) the values of each operand."""
    if "||" in inner and "&&" not in inner and "(" not in inner:
        values = [v for part in inner.split("||") for v in expression_values(part, inputs)]
        return list(dict.fromkeys(values))
    match = INPUT.fullmatch(inner)
    spec = inputs.get(match.group(1)) if match else None
    if spec and spec.get("type") == "choice":
        return [str(option) for option in spec["options"]]
    if spec and spec.get("type") == "boolean":
        return ["true", "false"]
    if inner.strip() in ("true", "false"):
        return [inner.strip()]
    literals = [text.replace("''", "'") for text in LITERAL.findall(inner)]
    return literals or [OPAQUE]


def expand_expressions(text: str, inputs: dict[str, Any]) -> list[str]:
    """``text`` with its expressions replaced, once per combination of their values."""
    parts = EXPRESSION.split(text)  # literal, expression, literal, ...
    choices = [[p] if i % 2 == 0 else expression_values(p, inputs) for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def substitute(word: str, binding: dict[str, str], *, unbound: str | None) -> str:
    """``word`` with each bound ``$VAR`` replaced; others left as they are (or ``unbound``)."""
    return VARIABLE.sub(lambda m: binding.get(m[1] or m[2], m[0] if unbound is None
                                              else unbound), word)


def guard_can_hold(guard: str | None, binding: dict[str, str]) -> bool:
    """False only when a ``[ "$VAR" = word ]`` (or ``!=``) test of a bound variable is false
    and the tests are joined by ``&&``; anything else might hold."""
    if guard is None or "||" in guard:
        return True
    for test in re.findall(r"\[\s+(.*?)\s+\]", guard):
        words = shlex.split(test)
        if len(words) != 3 or words[1] not in ("=", "==", "!="):
            continue
        left, right = (substitute(w, binding, unbound="$?") for w in (words[0], words[2]))
        if "$" not in left + right and (left == right) != (words[1] != "!="):
            return False
    return True


def invoke_words(words: list[str]) -> tuple[str, list[str]] | None:
    """The program (``invoke`` or ``claude-pm-deploy``) and the arguments after it when
    ``words`` is one of their command lines (``python3 -m invoke`` too), past leading
    assignments, ``sudo``/``env`` and their options; a redirection ends the arguments."""
    i = 0
    while i < len(words):
        if ASSIGNMENT.fullmatch(words[i]) or words[i] in KEYWORDS:
            i += 1
        elif words[i] in WRAPPERS:
            i += 1
            while i < len(words) and (words[i].startswith("-") or ASSIGNMENT.fullmatch(words[i])):
                i += 1
        else:
            break
    rest = list(itertools.takewhile(lambda w: not REDIRECT.match(w), words[i:]))
    if rest and os.path.basename(rest[0]) in ("invoke", "inv"):
        return "invoke", rest[1:]
    if rest and os.path.basename(rest[0]) == "claude-pm-deploy":
        return "claude-pm-deploy", rest[1:]
    if rest and re.fullmatch(r"python[\d.]*", os.path.basename(rest[0])) and \
            rest[1:3] == ["-m", "invoke"]:
        return "invoke", rest[3:]
    return None


def commands(step: Step) -> Iterator[tuple[str, str, list[str]]]:
    """Each concrete ``invoke``/``claude-pm-deploy`` argument list the step's script can run,
    with its line and its program."""
    lines = [line.strip() for line in step.script.replace("\\\n", " ").splitlines()]
    arrays: dict[str, list[tuple[str | None, str]]] = {}
    for line in lines:
        if match := ARRAY_LINE.fullmatch(line):
            arrays.setdefault(match["name"], []).append((match["guard"], match["items"]))
    for line in lines:
        if not line or line.startswith("#") or ARRAY_LINE.fullmatch(line):
            continue
        for text in expand_expressions(line, step.inputs):
            lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
            lexer.whitespace_split = True
            words = list(lexer)
            segments = [list(g) for sep, g in itertools.groupby(words, SEPARATORS.__contains__)
                        if not sep]
            for segment in segments:
                found = invoke_words(segment)
                if found is not None:
                    program, args = found
                    for bound_line, bound in bind(step, line, args, arrays):
                        yield program, bound_line, bound


def bind(step: Step, line: str, args: list[str],
         arrays: dict[str, list[tuple[str | None, str]]]) -> Iterator[tuple[str, list[str]]]:
    """``args`` once per value of the ``env:`` variables it names, arrays spliced in."""
    names = sorted({m[1] or m[2] for word in args for m in VARIABLE.finditer(word)
                    if (m[1] or m[2]) in step.env})
    values = [expand_expressions(step.env[name], step.inputs) for name in names]
    for combo in itertools.product(*values):
        binding = dict(zip(names, combo, strict=True))
        out: list[str] = []
        for word in args:
            if use := ARRAY_USE.fullmatch(word):
                for guard, items in arrays.get(use[1], []):
                    if guard_can_hold(guard, binding):
                        out.extend(shlex.split(items))
            else:
                out.append(substitute(word, binding, unbound=None))
        yield line, out


# Issue 15's flags (branch `hosts`, not merged here yet): flag -> takes a value. Until this
# checkout's tasks take --hosts, the SSH jobs' uses of these are let through (and only these);
# once any task takes it, every flag is checked against the tasks exactly, these included.
MANY_HOSTS_FLAGS = {"--hosts": True, "--parallel": True, "--all-or-none": False}


def pending_flags(meta: dict[str, Any]) -> dict[str, bool]:
    merged = any("--hosts" in task["flags"] for task in meta["tasks"].values())
    return {} if merged else MANY_HOSTS_FLAGS


def parse(where: str, line: str, program: str, args: list[str],
          meta: dict[str, Any]) -> list[Call]:
    """Split one invoke argument list into its tasks and their flags, as Invoke's parser
    does: core flags first, then each task with its flags and positional arguments, up to
    the first unknown task or flag (where Invoke stops too: what follows is moot)."""
    core, tasks = meta["core"][program], meta["tasks"]
    i = 0
    while i < len(args) and args[i].startswith("-"):
        flag = args[i].split("=", 1)[0]
        i += 1 + (core.get(flag, False) and "=" not in args[i])
    calls = []
    while i < len(args):
        name, i = args[i], i + 1
        if name not in tasks:
            return [*calls, Call(where, line, name, [])]
        info = {**tasks[name], "flags": {**pending_flags(meta), **tasks[name]["flags"]}}
        flags, positional = [], info["positional"]
        while i < len(args):
            word = args[i]
            if word.startswith("-") and word != "-":
                flag = word.split("=", 1)[0]
                flags.append(flag)
                if flag not in info["flags"]:
                    return [*calls, Call(where, line, name, flags)]
                i += 1 + (info["flags"][flag] and "=" not in word)
            elif positional:
                positional, i = positional - 1, i + 1
            else:
                break
        calls.append(Call(where, line, name, flags))
    return calls


def calls_in(path: Path) -> list[Call]:
    meta = invoke_meta()
    return [call for step in steps(path) for program, line, args in commands(step)
            for call in parse(step.where, line, program, args, meta)]


def task_problems(calls: list[Call]) -> list[str]:
    tasks = invoke_meta()["tasks"]
    return sorted({f"{c.where}: {c.line!r} runs {c.task!r}, which tasks.py does not define"
                   for c in calls if c.task not in tasks})


def flag_problems(calls: list[Call]) -> list[str]:
    meta = invoke_meta()
    tasks, pending = meta["tasks"], pending_flags(meta)
    return sorted({f"{c.where}: {c.line!r} gives {c.task} {flag}, which it does not accept"
                   for c in calls if c.task in tasks
                   for flag in c.flags if flag not in {**pending, **tasks[c.task]["flags"]}})


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         *map(str, paths)],
        env={**os.environ, **NO_NETWORK}, capture_output=True, text=True, check=False,
        timeout=120)


def test_there_are_workflows() -> None:
    """The checks below have workflow files to check (a moved folder would pass them all)."""
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "deploy.yml", "rollback.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path: Path) -> None:
    """The workflow validates against the GitHub-workflows schema vendored in check-jsonschema,
    with every proxy pointed at a closed port so that any download would fail the test."""
    done = check_jsonschema(path)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """A job with no ``runs-on`` fails the same offline check, so its passes mean something."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: 'true'\n")

    done = check_jsonschema(bad)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "runs-on" in done.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_step_mentioning_invoke_is_read(path: Path) -> None:
    """Each ``run:`` step that mentions ``invoke`` or ``claude-pm-deploy`` yields at least one
    command to check."""
    unread = [step.where for step in steps(path)
              if re.search(r"\binvoke\b|\bclaude-pm-deploy\b", step.script)
              and not list(commands(step))]

    assert unread == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_invoke_commands_name_existing_tasks(path: Path) -> None:
    """Every task an ``invoke`` command in a ``run:`` step names exists in tasks.py."""
    assert task_problems(calls_in(path)) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_invoke_flags_are_ones_the_task_accepts(path: Path) -> None:
    """Every ``--flag`` an ``invoke`` command in a ``run:`` step gives is one its task takes."""
    assert flag_problems(calls_in(path)) == []


def test_the_command_reader_catches_bad_tasks_and_flags(tmp_path: Path) -> None:
    """A made-up task, a misspelt flag and a flag its guard allows for the wrong task are all
    caught, and a flag whose guard rules that task out is not."""
    workflow = tmp_path / "w.yml"
    workflow.write_text(textwrap.dedent("""\
        on:
          workflow_dispatch:
            inputs:
              what: {type: choice, options: [release, scripts]}
              dry: {type: boolean}
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - run: python3 -m invoke deploy --wiat 300 && sudo -E env "PATH=$PATH" inv nosuch
              - run: python3 -m invoke history ${{ inputs.dry && '--json' || '--dry-run' }}
              - env: {WHAT: "${{ inputs.what }}"}
                run: |
                  args=(--wait 300)
                  if [ -n "$RUN" ] && [ "$WHAT" = release ]; then args+=(--run "$RUN"); fi
                  if [ "$WHAT" != scripts ]; then args+=(--name "$RUN"); fi
                  python3 -m invoke "rollback.$WHAT" "${args[@]}"
        """))

    calls = calls_in(workflow)

    assert task_problems(calls) == [
        "w.yml: job j, step 1: 'python3 -m invoke deploy --wiat 300 && sudo -E env "
        "\"PATH=$PATH\" inv nosuch' runs 'nosuch', which tasks.py does not define"]
    assert [p.split(" gives ")[1] for p in flag_problems(calls)] == [
        "deploy --wiat, which it does not accept",
        "history --dry-run, which it does not accept",
        "rollback.release --name, which it does not accept"]


# ---- What a platform engineer checks before signing a workflow off (issue 14) ----------------

GITHUB = REPO / ".github"
DEPLOYING = ("deploy.yml", "rollback.yml")
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$", re.M)
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+# v\d+(?:\.\d+)*\s*$")
SHEBANG = "#!/usr/bin/env bash\nset -eo pipefail\n"  # what `shell: bash` runs: bash -e -o pipefail


def workflow(name: str) -> Any:
    return load_yaml(GITHUB / "workflows" / name)


def run_steps(doc: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in doc["jobs"].items():
        for n, step in enumerate(job.get("steps") or [], 1):
            if "run" in step:
                yield f"job {job_id}, step {step.get('name', n)!r}", step


def rendered(script: str) -> str:
    """A ``run:`` script as bash sees it, each expression a placeholder variable."""
    return EXPRESSION.sub("${GITHUB_EXPRESSION}", script)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path: Path) -> None:
    """Every ``uses:`` names a full 40-hex commit and carries a ``# vX.Y.Z`` comment (what
    Dependabot keeps in step); a tag or a branch could be moved under the workflow."""
    uses = USES.findall(path.read_text())

    bad = [ref + rest for ref, rest in uses
           if not ref.startswith("./") and not (PINNED.fullmatch(ref)
                                                 and VERSION_COMMENT.fullmatch(rest))]

    assert uses and bad == []


def test_the_pin_check_rejects_a_tag_and_a_missing_comment() -> None:
    """``@v4`` and a bare SHA both fail the pin check above."""
    text = ("    - uses: actions/checkout@v4\n"
            "    - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1\n"
            "    - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n")

    uses = USES.findall(text)

    assert [bool(PINNED.fullmatch(r) and VERSION_COMMENT.fullmatch(x)) for r, x in uses] == \
        [False, False, True]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_pasted_into_a_script(path: Path) -> None:
    """No ``run:`` holds a ``${{ ... }}``: inputs, event fields and step outputs reach the
    shell only as ``env:`` variables, so no value can become shell code (script injection)."""
    pasted = [where for where, step in run_steps(load_yaml(path))
              if EXPRESSION.search(step["run"])]

    assert pasted == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_concurrency_and_timeouts_are_set(path: Path) -> None:
    """Read-only ``permissions`` at the top, a ``concurrency`` group, and every job with its
    own ``timeout-minutes`` (GitHub's default is six hours)."""
    doc = load_yaml(path)

    assert doc["permissions"] == {"contents": "read"}
    assert doc["concurrency"]["group"]
    assert {job_id: "timeout-minutes" in job for job_id, job in doc["jobs"].items()} == \
        dict.fromkeys(doc["jobs"], True)


def test_deploy_and_rollback_share_one_group_that_never_cancels() -> None:
    """deploy.yml and rollback.yml queue in one concurrency group and never cancel a running
    deploy or rollback; ci.yml cancels its own superseded runs."""
    deploy, rollback, ci = (workflow(n)["concurrency"] for n in (*DEPLOYING, "ci.yml"))

    assert deploy == rollback
    assert deploy["cancel-in-progress"] is False
    assert ci["cancel-in-progress"] is True and "github.ref" in ci["group"]


def test_ci_runs_every_python_and_the_same_tasks_people_run() -> None:
    """ci.yml: 3.11 to 3.14 without fail-fast, pip cache, ``invoke lint`` and ``invoke test``,
    and an actionlint job."""
    doc = workflow("ci.yml")
    test = doc["jobs"]["test"]
    setup = next(s for s in test["steps"] if "setup-python" in s.get("uses", ""))
    scripts = "\n".join(s["run"] for s in test["steps"] if "run" in s)

    assert test["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13", "3.14"]
    assert test["strategy"]["fail-fast"] is False
    assert setup["with"]["cache"] == "pip"
    assert "invoke lint" in scripts and "invoke test" in scripts
    assert "actionlint" in doc["jobs"]


def test_deploy_triggers_inputs_and_environment() -> None:
    """deploy.yml: published releases, pre-releases skipped in every job, a dispatch with the
    category as a choice and dry run as a boolean, and every job in an environment."""
    doc = workflow("deploy.yml")
    inputs = doc["on"]["workflow_dispatch"]["inputs"]

    assert doc["on"]["release"] == {"types": ["published"]}
    assert inputs["category"]["type"] == "choice"
    assert inputs["category"]["options"] == ["all", "scripts", "framework", "templates"]
    assert inputs["dry_run"]["type"] == "boolean"
    for job in doc["jobs"].values():
        assert "!github.event.release.prerelease" in job["if"]
        assert job["environment"]


def test_rollback_inputs() -> None:
    """rollback.yml: the category as a choice of release and every category a deploy writes
    (not versions: version files are the repository's), the run id, backup id and commit as
    strings, dry run and force as booleans."""
    inputs = workflow("rollback.yml")["on"]["workflow_dispatch"]["inputs"]

    assert inputs["category"]["options"] == ["release", "scripts", "templates", "framework",
                                             "parents"]
    assert {k: inputs[k]["type"] for k in ("run_id", "backup_id", "commit", "dry_run", "force")} \
        == {"run_id": "string", "backup_id": "string", "commit": "string",
            "dry_run": "boolean", "force": "boolean"}


@pytest.mark.parametrize("name", DEPLOYING)
def test_each_job_checks_its_inputs_first_and_alike(name: str) -> None:
    """The input check is each job's first step (before the checkout), and the self-hosted
    and SSH jobs of a workflow run the same check with the same variables."""
    jobs = workflow(name)["jobs"]

    firsts = [job["steps"][0] for job in jobs.values()]

    assert {step["id"] for step in firsts} == {"inputs"}
    assert all(step == firsts[0] for step in firsts)


@pytest.mark.parametrize("name", DEPLOYING)
def test_the_toolkit_is_installed_into_a_venv_from_the_constraints(name: str) -> None:
    """Each job installs into a fresh venv with ``--constraint constraints.txt`` and never
    with ``pip install --user`` (PEP 668 refuses it on Debian and Ubuntu)."""
    doc = workflow(name)

    for job in doc["jobs"].values():
        install = next(s for s in job["steps"] if s.get("id") == "install")["run"]
        assert "-m venv" in install and "--constraint constraints.txt" in install
    assert [where for where, step in run_steps(doc) if "--user" in step["run"]] == []


def test_constraints_pin_every_runtime_dependency() -> None:
    """constraints.txt pins (``==``) every distribution the toolkit needs at run time on this
    Python, so a deploy installs what was tested and Dependabot has a line to bump."""
    from importlib.metadata import requires

    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {canonicalize_name(line.split("==")[0]) for line in
            (REPO / "constraints.txt").read_text().splitlines()
            if line and not line.startswith("#") and "==" in line}
    needed: set[str] = set()
    todo = ["claude-pm-deploy"]
    while todo:
        for text in requires(todo.pop()) or []:
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if name not in needed and (req.marker is None or req.marker.evaluate(
                    {**default_environment(), "extra": ""})):
                needed.add(name)
                todo.append(req.name)

    assert needed and needed - pins == set()


def test_runner_labels_agree_with_actionlints_list() -> None:
    """One self-hosted label per managed machine: deploy.yml's matrix, rollback.yml's
    ``machine`` choice and .github/actionlint.yaml list the same labels."""
    declared = load_yaml(GITHUB / "actionlint.yaml")["self-hosted-runner"]["labels"]
    deploy = workflow("deploy.yml")["jobs"]["runner"]
    rollback = workflow("rollback.yml")

    assert deploy["strategy"]["matrix"]["machine"] == declared
    assert rollback["on"]["workflow_dispatch"]["inputs"]["machine"]["options"] == declared
    assert deploy["runs-on"] == ["self-hosted", "${{ matrix.machine }}"]
    assert rollback["jobs"]["runner"]["runs-on"] == ["self-hosted", "${{ inputs.machine }}"]


def test_ssh_jobs_run_on_a_github_hosted_runner_with_checked_host_keys() -> None:
    """The SSH path: ubuntu-24.04, the key and known_hosts from secrets through ``env:``, host
    keys checked (never ``StrictHostKeyChecking=no``), and the tasks given ``--hosts``."""
    for name in DEPLOYING:
        text = (GITHUB / "workflows" / name).read_text()
        job = workflow(name)["jobs"]["ssh"]
        scripts = "\n".join(s["run"] for s in job["steps"] if "run" in s)

        assert job["runs-on"] == "ubuntu-24.04"
        assert "secrets.DEPLOY_SSH_KEY" in text and "secrets.DEPLOY_SSH_KNOWN_HOSTS" in text
        assert "StrictHostKeyChecking yes" in scripts
        assert not re.search(r"StrictHostKeyChecking[ =]+(no|off|accept-new)", scripts, re.I)
        assert '--hosts "$HOSTS"' in scripts


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_shellcheck_passes_on_every_script(path: Path) -> None:
    """shellcheck (every severity, down to style) finds nothing in any ``run:`` script, read
    as ``shell: bash`` runs it (``bash -e -o pipefail``), expressions as a variable."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    found = {}
    for where, step in run_steps(load_yaml(path)):
        done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"],
                              input=SHEBANG + rendered(step["run"]), capture_output=True,
                              text=True, check=False, timeout=60)
        if done.returncode:
            found[where] = done.stdout

    assert found == {}


def test_shellcheck_is_really_consulted(tmp_path: Path) -> None:
    """The same shellcheck call flags an unquoted variable, so a pass above means something."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")

    done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"],
                          input=SHEBANG + rendered("rm $TARGET/${{ inputs.x }}\n"),
                          capture_output=True, text=True, check=False, timeout=60)

    assert done.returncode == 1 and "SC2086" in done.stdout


def test_actionlint_passes() -> None:
    """actionlint, with .github/actionlint.yaml's labels, finds nothing (ci.yml's actionlint
    job runs it on every push; here it runs when installed)."""
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed here (its PyPI wrapper downloads the binary "
                    "from GitHub while building, which this machine cannot reach); ci.yml's "
                    "actionlint job runs it")

    done = subprocess.run([actionlint, "-color=false"], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr


def test_dependabot_watches_the_actions_and_the_pins() -> None:
    """.github/dependabot.yml updates github-actions and pip from the repository root, and
    passes the Dependabot schema vendored in check-jsonschema (offline)."""
    config = load_yaml(GITHUB / "dependabot.yml")

    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot",
         str(GITHUB / "dependabot.yml")],
        env={**os.environ, **NO_NETWORK}, capture_output=True, text=True, check=False,
        timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert {(u["package-ecosystem"], u["directory"]) for u in config["updates"]} == \
        {("github-actions", "/"), ("pip", "/")}
