"""One scratch project taken through every task that prints ``--json``, for the schema tests.

Each :class:`Step` runs one task through the real CLI (``invoke ... --json`` in a subprocess)
after an optional change to the project's files; :func:`play` runs them in order, once, and
keeps each step's JSON document and exit code. The steps make the documents non-trivial: a
release that creates and updates, bumps, rollbacks of runs and of one backup, a render
restored, a hand edit accepted, history over many runs, backups in the
status and the list, legacy files listed and migrated, a verify that finds problems, and a
reindex after the index was lost; and failures that print the error document (a conflict,
a merge conflict, bad input, a config error at its line).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import BASE_CONFIG, Project

FRAMEWORK = ("# Claude PM {{ framework_version }}\nfor: {{ parent_dir }}\n"
             "memory {{ versions.memory }}\n")
MEMORY = "memory:\n  top_k: {{ top_k | default(8) }}\n  version: {{ versions.memory }}\n"

CONFIG = BASE_CONFIG.replace('parents = []', 'parents = ["p1"]') + """
[tool.deploy.versions.requires]
memory = ">=2"
cli = ">=8"

[[tool.deploy.templates]]
id = "memory-config"
source = "tpl/memory.yaml.j2"
target = "target/memory.yaml"

[tool.deploy.context]
top_k = 8

[tool.deploy.backup]
max_backups_per_type = 1
retention_days = 3650
"""


def script(version: str) -> str:
    return f"#!/bin/sh\necho {version}\n"


def start(project: Project) -> None:
    project.write({"bin/alpha": script("alpha 1"), "bin/beta": script("beta 1"),
                   "tpl/CLAUDE.md": FRAMEWORK, "tpl/memory.yaml.j2": MEMORY,
                   "versions/VERSION": "0.7.5\n", "versions/MEMORY_VERSION": "003\n",
                   "versions/CLI_VERSION": "008\n"})
    (project.root / "p1").mkdir()
    project.config_path.write_text(CONFIG)


def change_scripts(project: Project) -> None:
    project.write({"bin/alpha": script("alpha 2"), "bin/gamma": script("gamma 1")})


def change_template(project: Project) -> None:
    project.config_path.write_text(CONFIG.replace("top_k = 8", "top_k = 10"))


def edit_by_hand(project: Project) -> None:
    target = project.target / "memory.yaml"
    target.write_text(target.read_text() + "# my notes\n")


def conflicting_edits(project: Project) -> None:
    target = project.target / "memory.yaml"
    target.write_text(target.read_text().replace("top_k: 10", "top_k: 12"))
    project.config_path.write_text(CONFIG.replace("top_k = 8", "top_k = 16"))


def drift_a_script(project: Project) -> None:
    project.write({"target/bin/beta": script("beta edited")})


def leave_legacy_files(project: Project) -> None:
    project.write({
        "target/bin/alpha.backup.20250714_170157": script("alpha 0"),
        "versions/MEMORY_VERSION.backup.20250714_170158": "001\n",
        "state/framework_backups/framework_CLAUDE_md_20250714_170156_489.backup": "# old fw\n",
        "target/bin/notes.backup": "no timestamp: never legacy\n",
    })


def damage_the_tree(project: Project) -> None:
    """One backup file gone, one with other bytes, one file no row names."""
    scripts = sorted((project.tree / "scripts").iterdir())
    scripts[0].unlink()
    scripts[1].write_bytes(b"not what was backed up\n")
    (project.tree / "versions" / "CLI_VERSION_backup_20250101_000000").write_bytes(b"007\n")


def outdate_cli(project: Project) -> None:
    project.write({"versions/CLI_VERSION": "007\n"})


def misconfigure(project: Project) -> None:
    project.config_path.write_text(CONFIG + "\n[tool.deploy.scripts.extra]\nretention = 1\n")


def lose_the_index(project: Project) -> None:
    (project.tree / "index.sqlite").unlink()


@dataclass(frozen=True)
class Step:
    label: str             # unique: the test id
    task: str              # the task whose document this is
    args: tuple[str, ...] | Callable[[dict[str, Outcome]], tuple[str, ...]] = ()
    exits: tuple[int, ...] = (0,)
    before: Callable[[Project], None] | None = None
    # stdout is the task's own document whatever the exit code (a status task's exit 3, a
    # verify's 1); else a failing step's stdout is the error document
    reports: bool = True


STEPS: tuple[Step, ...] = (
    Step("versions.show", "versions.show", before=start),
    Step("deploy-dry-run", "deploy", ("--dry-run",)),
    Step("deploy-creates", "deploy"),
    Step("deploy-nothing-to-do", "deploy"),
    Step("deploy.scripts-updates", "deploy.scripts", before=change_scripts),
    Step("deploy.templates-updates", "deploy.templates", before=change_template),
    Step("deploy.framework-unchanged", "deploy.framework"),
    Step("versions.bump", "versions.bump", ("memory",)),
    Step("versions.bump-dry-run", "versions.bump", ("memory", "--dry-run")),
    Step("versions.bulk", "versions.bulk", ("--set", "memory=010", "--set", "cli=009")),
    Step("versions.check-met", "versions.check"),
    Step("rollback.versions", "rollback.versions"),
    Step("rollback.release-dry-run", "rollback.release", ("--dry-run",)),
    Step("rollback.release", "rollback.release"),
    Step("rollback.scripts", "rollback.scripts"),
    Step("rollback.framework", "rollback.framework"),
    Step("rollback.parents", "rollback.parents"),
    Step("rollback.parents-nothing", "rollback.parents"),
    Step("rollback.templates-render", "rollback.templates",
         ("--id", "memory-config", "--render", "1")),
    Step("rollback.templates-render-dry-run", "rollback.templates",
         ("--id", "memory-config", "--render", "2", "--dry-run")),
    Step("deploy-again", "deploy"),
    Step("templates.status-edited", "templates.status", exits=(3,), before=edit_by_hand),
    Step("deploy-conflict", "deploy", exits=(3,), reports=False),
    Step("templates.adopt-dry-run", "templates.adopt", ("--dry-run",)),
    Step("templates.adopt", "templates.adopt"),
    Step("deploy-merge-conflict", "deploy", ("--on-conflict", "merge"), exits=(3,),
         before=conflicting_edits, reports=False),
    Step("deploy-keep", "deploy", ("--on-conflict", "keep")),
    Step("templates.status", "templates.status"),
    Step("templates.history", "templates.history", ("memory-config",)),
    Step("rollback.templates-forced", "rollback.templates", ("--force",)),
    Step("scripts.status-drifted", "scripts.status", exits=(3,), before=drift_a_script),
    Step("backups.create-dry-run", "backups.create", ("--category", "scripts", "--dry-run")),
    Step("backups.create", "backups.create", ("--category", "scripts")),
    Step("rollback.scripts-to", "rollback.scripts", lambda done: (
        "--to", str(done["deploy.scripts-updates"].document["changes"][0]["backup_id"]))),
    Step("scripts.status", "scripts.status", exits=(0, 3)),
    Step("history", "history"),
    Step("history-all-projects", "history", ("--all-projects", "--limit", "0")),
    Step("history.keep", "history.keep", lambda done: (
        "--run", str(done["deploy-creates"].document["run"]))),
    Step("history.keep-off-dry-run", "history.keep", lambda done: (
        "--run", str(done["deploy-creates"].document["run"]), "--off", "--dry-run")),
    Step("backups.status", "backups.status"),
    Step("backups.list", "backups.list"),
    Step("backups.list-category", "backups.list", ("--category", "templates")),
    Step("backups.prune-dry-run", "backups.prune", ("--dry-run",)),
    Step("backups.prune", "backups.prune"),
    Step("backups.legacy", "backups.legacy", before=leave_legacy_files),
    Step("backups.migrate-dry-run", "backups.migrate", ("--dry-run", "--remove-originals")),
    Step("backups.migrate", "backups.migrate"),
    Step("backups.migrate-again", "backups.migrate", ("--remove-originals",)),
    Step("backups.verify-clean", "backups.verify"),
    Step("backups.verify-problems", "backups.verify", exits=(1,), before=damage_the_tree),
    Step("backups.verify-sample", "backups.verify", ("--sample", "2"), exits=(1,)),
    Step("backups.reindex-refused", "backups.reindex", exits=(2,), reports=False),
    Step("backups.verify-no-index", "backups.verify", exits=(1,), before=lose_the_index),
    Step("backups.reindex-dry-run", "backups.reindex", ("--dry-run",)),
    Step("backups.reindex", "backups.reindex"),
    Step("backups.reindex-force", "backups.reindex", ("--force",)),
    Step("backups.verify-after-reindex", "backups.verify"),
    Step("versions.check-unmet", "versions.check", exits=(3,), before=outdate_cli),
    Step("error-unknown-category", "backups.list", ("--category", "nope"), exits=(2,),
         reports=False),
    Step("error-unknown-template", "templates.history", ("nope",), exits=(2,), reports=False),
    Step("error-config-key", "versions.show", exits=(2,), reports=False, before=misconfigure),
)


@dataclass(frozen=True)
class Outcome:
    step: Step
    code: int
    stdout: str
    stderr: str

    @property
    def document(self) -> Any:
        """The one JSON document on stdout (None when stdout is empty)."""
        return json.loads(self.stdout) if self.stdout.strip() else None


def play(project: Project) -> dict[str, Outcome]:
    """Every step, in order, on ``project``; a step whose exit code is not one it expects
    stops the scenario with its output (every later document would describe a different
    tree)."""
    outcomes: dict[str, Outcome] = {}
    for step in STEPS:
        if step.before is not None:
            step.before(project)
        args = step.args(outcomes) if callable(step.args) else step.args
        done = project.invoke(step.task, *args, "--json")
        outcome = Outcome(step, done.returncode, done.stdout, done.stderr)
        assert done.returncode in step.exits, (
            f"{step.label}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        outcomes[step.label] = outcome
    return outcomes


def scenario_project(root: Path, home: Path) -> Project:
    """A project at ``root`` with HOME at ``home`` and no GitHub Actions variables (set in
    the environment the CLI gets, since a module-scoped scenario starts before the
    function-scoped fixture that clears them)."""
    return Project(root, env={"HOME": str(home), "GITHUB_ACTIONS": "",
                              "GITHUB_STEP_SUMMARY": "", "GITHUB_OUTPUT": "",
                              "DEPLOY_PREFIX": ""})
