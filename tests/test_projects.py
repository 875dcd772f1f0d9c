"""One index per machine, one project per run: two clones never step back each other's runs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Project

SHARED = """\
[tool.deploy]
state_dir = "{state}"

[tool.deploy.scripts]
source = "bin"
target = "{bin}"

[tool.deploy.versions]
dir = "versions"

[tool.deploy.framework]
template = "tpl/CLAUDE.md"
install_to = "target/framework/CLAUDE.md"
parents = []
"""


def clones(tmp_path: Path) -> tuple[Project, Project]:
    """Two clones of one repository sharing the machine's state dir and ~/.local/bin."""
    made = []
    for name in ("clone-a", "clone-b"):
        proj = Project(tmp_path / name)
        proj.write({"bin/tool": f"#!/bin/sh\necho {name}\n", "versions/MEMORY_VERSION": "003\n"})
        proj.config_path.write_text(SHARED.format(state=tmp_path / "state",
                                                  bin=tmp_path / "local-bin"))
        made.append(proj)
    return made[0], made[1]


def test_a_rollback_in_one_clone_never_touches_the_other(tmp_path: Path) -> None:
    """Each clone bumps its own MEMORY_VERSION; `rollback.versions` in clone A restores
    A's file only, even though B's bump is the machine's newest run."""
    a, b = clones(tmp_path)
    a.ok("versions.bump", "memory")
    b.ok("versions.bump", "memory")

    a.ok("rollback.versions")

    assert (a.root / "versions/MEMORY_VERSION").read_text() == "003\n"
    assert (b.root / "versions/MEMORY_VERSION").read_text() == "004\n"


def test_history_shows_this_project_unless_asked_for_every_one(tmp_path: Path) -> None:
    """`history` lists the current project's runs; `--all-projects` lists every one, each
    with its project."""
    a, b = clones(tmp_path)
    a.ok("versions.bump", "memory")
    b.ok("versions.bump", "memory")

    mine = json.loads(a.ok("history", "--json").stdout)["runs"]
    every = json.loads(a.ok("history", "--all-projects", "--json").stdout)["runs"]

    assert [r["project"] for r in mine] == [str(a.config_path)]
    assert sorted(r["project"] for r in every) == sorted([str(a.config_path),
                                                          str(b.config_path)])


def test_a_target_two_projects_share_stays_protected_by_the_drift_check(tmp_path: Path) -> None:
    """A script both clones deploy to one ~/.local/bin: after B overwrote it, rolling A's
    deploy back is drift (exit 3), not a silent restore over B's bytes."""
    a, b = clones(tmp_path)
    a.ok("deploy.scripts")
    b.ok("deploy.scripts")

    done = a.invoke("rollback.scripts")

    assert done.returncode == 3, done.stderr
    assert "changed since run" in done.stderr
    assert (tmp_path / "local-bin" / "tool").read_text() == "#!/bin/sh\necho clone-b\n"


def test_an_adopt_run_belongs_to_its_project(tmp_path: Path) -> None:
    """`templates.adopt` records its project like every run: the other clone's history
    and step-back rollbacks never see it (it was recorded with no project, so it counted
    for every one)."""
    a, b = clones(tmp_path)
    a.write({"tpl/CLAUDE.md": "# framework\n"})  # configured: it must exist
    with a.config_path.open("a") as config:
        config.write('\n[[tool.deploy.templates]]\nid = "app"\nsource = "tpl/app.j2"\n'
                     'target = "target/app.conf"\n')
    a.write({"tpl/app.j2": "port = 80\n"})
    a.ok("deploy.templates")
    (a.root / "target/app.conf").write_text("port = 8080\n")

    adopted = a.json("templates.adopt")["run"]

    assert [r["id"] for r in a.json("history")["runs"]][:1] == [adopted]
    assert adopted not in [r["id"] for r in b.json("history")["runs"]]
    assert [r["project"] for r in a.json("history", "--all-projects")["runs"]
            if r["id"] == adopted] == [str(a.config_path)]
