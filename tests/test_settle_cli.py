"""Settling conflicts through the real CLI: ``--on-conflict keep`` and ``merge`` are recorded,
``templates.adopt`` accepts hand edits, and a rollback's bytes are the new reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, NO_FRAMEWORK_CONFIG, Project, assert_one_error_line

TEMPLATE = """
[[tool.deploy.templates]]
id = "app"
source = "tpl/app.conf.j2"
target = "target/conf/app.conf"

[tool.deploy.context]
project_name = "demo"
"""

# Five lines: an edit at the top and a template change further down merge cleanly.
BODY = "# {{ project_name }}\nport = 80\nhost = localhost\nworkers = 2\nlog = info\n"
RENDERED = BODY.replace("{{ project_name }}", "demo")
FRAMEWORK = "# Claude PM {{ framework_version }}\nfor: {{ parent_dir }}\nrules here\nend\n"


@pytest.fixture
def tpl(project: Project) -> Project:
    """A project with one template, ``app``, rendered to target/conf/app.conf."""
    project.configure(TEMPLATE, base=NO_FRAMEWORK_CONFIG)
    project.write({"tpl/app.conf.j2": BODY})
    return project


@pytest.fixture
def fw(project: Project) -> Project:
    """A project with a framework template and one parent folder, ``par``."""
    project.write({"tpl/CLAUDE.md": FRAMEWORK, "versions/VERSION": "0.7.5\n"})
    (project.root / "par").mkdir()
    project.configure(base=BASE_CONFIG.replace("parents = []", 'parents = ["par"]'))
    return project


def target(project: Project) -> Path:
    return project.target / "conf" / "app.conf"


def installed(project: Project) -> Path:
    return project.target / "framework" / "CLAUDE.md"


def parent(project: Project) -> Path:
    return project.root / "par" / "CLAUDE.md"


def edit(path: Path, old: str, new: str) -> bytes:
    """Edit ``path`` by hand, replacing ``old`` (which must be there) with ``new``."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path.read_bytes()


def change_template(project: Project, old: str, new: str) -> None:
    text = (project.root / "tpl/app.conf.j2").read_text()
    assert old in text
    project.write({"tpl/app.conf.j2": text.replace(old, new)})


def nothing_to_do(project: Project, *task: str) -> None:
    """A plain deploy: exit 0, no run, no change."""
    out = project.json(*task)
    assert out["run"] is None and out["changes"] == [], out


def backups(project: Project) -> list[str]:
    return sorted(str(p.relative_to(project.tree)) for p in project.tree.rglob("*.backup"))


def blocked(project: Project, *needles: str, task: str = "deploy") -> None:
    """A plain deploy exits 3 with one error line naming ``needles``, and writes nothing."""
    before = project.snapshot()
    done = project.invoke(task)
    assert done.returncode == 3, done.stdout + done.stderr
    assert_one_error_line(done.stderr, *needles)
    assert project.snapshot() == before


# --on-conflict keep


def test_keep_then_plain_deploy_passes(tpl: Project) -> None:
    """A kept hand edit is recorded: the next plain deploy (the release and the category's
    own task) is nothing to do, with the template change that was declined still pending."""
    tpl.ok("deploy")
    hand = edit(target(tpl), "# demo", "# demo, tuned by hand")
    change_template(tpl, "log = info", "log = debug")

    kept = tpl.json("deploy", "--on-conflict", "keep")

    assert target(tpl).read_bytes() == hand
    assert [(c["action"], c["backup"]) for c in kept["changes"]] == [("adopt", None)]
    nothing_to_do(tpl, "deploy")
    nothing_to_do(tpl, "deploy.templates")
    assert target(tpl).read_bytes() == hand
    runs = tpl.json("history")["runs"]
    assert [(r["kind"], r["changed"]) for r in runs] == [("deploy", 0), ("deploy", 1)]


def test_keep_then_a_new_edit_blocks(tpl: Project) -> None:
    """After keep, a new hand edit is a conflict again, named with the run that kept it."""
    tpl.ok("deploy")
    edit(target(tpl), "# demo", "# demo, tuned by hand")
    kept = tpl.json("deploy", "--on-conflict", "keep")

    edit(target(tpl), "workers = 2", "workers = 3")

    blocked(tpl, str(target(tpl)), f"edited since run {kept['run']} wrote it")


def test_keep_then_a_template_change_merges_into_the_kept_edit(tpl: Project) -> None:
    """The kept file's base is the render it was kept against: a later template change
    merges into it, and the change the keep declined stays declined."""
    tpl.ok("deploy")
    edit(target(tpl), "# demo", "# demo, tuned by hand")
    change_template(tpl, "log = info", "log = debug")  # declined by the keep below
    tpl.ok("deploy", "--on-conflict", "keep")
    change_template(tpl, "host = localhost", "host = example.org")

    done = tpl.ok("deploy")

    assert target(tpl).read_text() == RENDERED.replace("# demo", "# demo, tuned by hand") \
        .replace("host = localhost", "host = example.org")
    assert "updated" in done.stdout
    nothing_to_do(tpl, "deploy")


def test_keep_of_a_conflicting_merge_settles_it(tpl: Project) -> None:
    """A merge that conflicts, kept: the next plain deploy is nothing to do, not the same
    merge conflict again."""
    tpl.ok("deploy")
    edit(target(tpl), "port = 80", "port = 8080")
    change_template(tpl, "port = 80", "port = 443")
    assert tpl.invoke("deploy", "--on-conflict", "merge").returncode == 3

    tpl.ok("deploy", "--on-conflict", "keep")

    nothing_to_do(tpl, "deploy")
    assert "port = 8080" in target(tpl).read_text()


# --on-conflict merge


def test_merge_with_an_unchanged_template_is_recorded(tpl: Project) -> None:
    """A merge whose result is the file itself (the template did not change) accepts the
    file instead of saying "nothing to do" and leaving the next deploy blocked."""
    tpl.ok("deploy")
    hand = edit(target(tpl), "# demo", "# demo, tuned by hand")

    merged = tpl.json("deploy", "--on-conflict", "merge")

    assert [c["action"] for c in merged["changes"]] == ["adopt"]
    assert target(tpl).read_bytes() == hand
    nothing_to_do(tpl, "deploy")


def test_merge_then_plain_deploy_is_nothing_to_do(tpl: Project) -> None:
    """A merge writes its result and makes it ours: the next deploys are nothing to do, and
    a later template change merges again without losing the edit."""
    tpl.ok("deploy")
    edit(target(tpl), "# demo", "# demo, tuned by hand")
    change_template(tpl, "log = info", "log = debug")
    tpl.ok("deploy", "--on-conflict", "merge")
    merged = target(tpl).read_bytes()

    nothing_to_do(tpl, "deploy")
    nothing_to_do(tpl, "deploy.templates")
    change_template(tpl, "workers = 2", "workers = 4")
    tpl.ok("deploy")

    assert merged == (RENDERED.replace("# demo", "# demo, tuned by hand")
                      .replace("log = info", "log = debug")).encode()
    assert target(tpl).read_bytes() == merged.replace(b"workers = 2", b"workers = 4")


# templates.adopt


def test_adopt_a_template_writes_nothing_and_settles_it(tpl: Project) -> None:
    """templates.adopt records a run of its own (kind adopt) with no target written and no
    backup; then a plain deploy is nothing to do."""
    tpl.ok("deploy")
    hand = edit(target(tpl), "# demo", "# demo, tuned by hand")
    outside = {k: v for k, v in tpl.snapshot().items() if not k.startswith("state")}

    out = tpl.json("templates.adopt", "--id", "app")

    assert [(c["action"], c["target"], c["backup"]) for c in out["changes"]] == \
        [("adopt", str(target(tpl)), None)]
    assert {k: v for k, v in tpl.snapshot().items() if not k.startswith("state")} == outside
    assert backups(tpl) == []
    runs = tpl.json("history")["runs"]
    assert (runs[0]["id"], runs[0]["kind"], runs[0]["state"], runs[0]["changed"]) == \
        (out["run"], "adopt", "done", 0)
    nothing_to_do(tpl, "deploy")
    assert target(tpl).read_bytes() == hand


def test_adopt_then_a_template_change_merges(tpl: Project) -> None:
    """After adopt a template change merges into the adopted file under the default policy;
    one that conflicts with it blocks, naming the file and showing the hunk."""
    tpl.ok("deploy")
    edit(target(tpl), "# demo", "# demo, tuned by hand")
    tpl.ok("templates.adopt")
    change_template(tpl, "log = info", "log = debug")

    tpl.ok("deploy")

    assert target(tpl).read_text() == RENDERED.replace("# demo", "# demo, tuned by hand") \
        .replace("log = info", "log = debug")
    change_template(tpl, "# {{ project_name }}", "# {{ project_name }} (v3)")
    before = tpl.snapshot()
    done = tpl.invoke("deploy")
    assert done.returncode == 3
    assert_one_error_line(done.stderr, str(target(tpl)), "merge conflict")
    assert "# demo, tuned by hand\n=======\n# demo (v3)\n" in done.stdout
    assert tpl.snapshot() == before


def test_adopt_keeps_a_pending_template_change_coming(tpl: Project) -> None:
    """adopt accepts the edit, not a verdict on the template: a template change made before
    the adopt still merges in at the next deploy (keep is the way to decline it)."""
    tpl.ok("deploy")
    edit(target(tpl), "# demo", "# demo, tuned by hand")
    change_template(tpl, "log = info", "log = debug")
    blocked(tpl, str(target(tpl)), "edited since run 1 wrote it")

    tpl.ok("templates.adopt")
    tpl.ok("deploy")

    assert target(tpl).read_text() == RENDERED.replace("# demo", "# demo, tuned by hand") \
        .replace("log = info", "log = debug")


def test_adopt_with_nothing_edited_is_nothing_to_do(tpl: Project) -> None:
    """No rendered target differs from what was written: no run, no lock, nothing written;
    a dry run shows what it would accept and writes nothing."""
    tpl.ok("deploy")
    before = tpl.snapshot()

    out = tpl.json("templates.adopt")
    unchanged = tpl.snapshot()
    edit(target(tpl), "# demo", "# mine")
    edited = tpl.snapshot()
    dry = tpl.ok("templates.adopt", "--dry-run")

    assert out["run"] is None and out["changes"] == []
    assert unchanged == before
    assert tpl.snapshot() == edited
    assert f"would accept {target(tpl)}" in dry.stdout


def test_adopt_the_installed_framework_template(fw: Project) -> None:
    """--framework adopts the installed framework template (installed as is, never rendered)."""
    fw.ok("deploy.framework")
    hand = edit(installed(fw), "rules here", "rules here, and mine")
    blocked(fw, str(installed(fw)), task="deploy.framework")

    out = fw.json("templates.adopt", "--framework")

    assert [(c["category"], c["action"]) for c in out["changes"]] == [("framework", "adopt")]
    nothing_to_do(fw, "deploy.framework")
    fw.write({"tpl/CLAUDE.md": FRAMEWORK.replace("# Claude PM", "# The Claude PM")})
    fw.ok("deploy.framework")
    assert installed(fw).read_bytes() == hand.replace(b"# Claude PM", b"# The Claude PM")


def test_adopt_a_parent_claude_md(fw: Project) -> None:
    """--dir adopts one parent's CLAUDE.md; the framework template is left out of it."""
    fw.ok("deploy.framework")
    edit(installed(fw), "rules here", "rules of the install")
    hand = edit(parent(fw), "rules here", "rules here, and the project's own")

    out = fw.json("templates.adopt", "--dir", "par")

    assert [(c["category"], c["target"]) for c in out["changes"]] == \
        [("parents", str(parent(fw)))]
    blocked(fw, str(installed(fw)), task="deploy.framework")
    fw.ok("templates.adopt", "--framework")
    nothing_to_do(fw, "deploy")
    assert parent(fw).read_bytes() == hand


def test_adopt_a_claude_md_this_toolkit_never_wrote(fw: Project) -> None:
    """A parent's CLAUDE.md that was there first (the original's render plus hand-added lines)
    is adopted against the current render: deploys leave it, template changes merge in."""
    own = f"# Claude PM 0.7.5\nfor: {fw.root / 'par'}\nrules here\nend\nmy own line\n"
    fw.write({"par/CLAUDE.md": own})
    blocked(fw, str(parent(fw)), "not written by this toolkit", task="deploy.framework")

    fw.ok("templates.adopt", "--dir", str(fw.root / "par"))

    fw.ok("deploy")  # installs the framework template; the adopted CLAUDE.md stays
    assert parent(fw).read_text() == own
    nothing_to_do(fw, "deploy")
    fw.write({"tpl/CLAUDE.md": FRAMEWORK.replace("rules here", "new rules")})
    fw.ok("deploy")
    assert parent(fw).read_text() == own.replace("rules here", "new rules")


def test_rollback_of_an_adopt_run_makes_the_edit_a_conflict_again(tpl: Project) -> None:
    """rollback.release --run of an adopt run writes nothing and withdraws the acceptance;
    step-back rollbacks pass over adopt runs (they changed nothing)."""
    tpl.ok("deploy")
    hand = edit(target(tpl), "# demo", "# demo, tuned by hand")
    adopted = tpl.json("templates.adopt")["run"]
    before = {k: v for k, v in tpl.snapshot().items() if not k.startswith("state")}

    undone = tpl.json("rollback.release", "--run", str(adopted))

    assert str(undone["undoes"]) == str(adopted) and undone["changes"] == []
    assert {k: v for k, v in tpl.snapshot().items() if not k.startswith("state")} == before
    assert target(tpl).read_bytes() == hand
    states = {r["id"]: (r["kind"], r["state"]) for r in tpl.json("history")["runs"]}
    assert states[adopted] == ("adopt", "undone")
    blocked(tpl, str(target(tpl)), "edited since run 1 wrote it")
    tpl.ok("templates.adopt")
    step = tpl.invoke("rollback.templates", "--dry-run")
    assert step.returncode == 3
    assert_one_error_line(step.stderr, "changed since run 1 wrote it")


# rollbacks


def test_rollback_then_hand_edit_then_deploy_blocks(tpl: Project) -> None:
    """After a rollback the reference is what the rollback wrote: a hand edit made after it
    blocks the next deploy (step-back rollback and --render alike)."""
    tpl.ok("deploy")
    change_template(tpl, "log = info", "log = debug")
    tpl.ok("deploy")
    tpl.ok("rollback.templates")
    edit(target(tpl), "port = 80", "port = 8080")

    blocked(tpl, str(target(tpl)), "edited since run 3 wrote it")

    tpl.ok("deploy", "--on-conflict", "overwrite")
    tpl.ok("rollback.templates", "--id", "app", "--render", "1")
    edit(target(tpl), "host = localhost", "host = example.org")
    blocked(tpl, str(target(tpl)), "edited since run 5 wrote it")


def test_rollback_that_brings_a_hand_edit_back_is_not_overwritten(tpl: Project) -> None:
    """A rollback of an overwrite gives the hand edit back; the next deploy merges the
    template into it again instead of silently overwriting it (it used to: no merge base)."""
    tpl.ok("deploy")
    hand = edit(target(tpl), "port = 80", "port = 8080")
    change_template(tpl, "log = info", "log = debug")
    tpl.ok("deploy", "--on-conflict", "overwrite")
    tpl.ok("rollback.templates")
    assert target(tpl).read_bytes() == hand

    tpl.ok("deploy")

    assert target(tpl).read_bytes() == hand.replace(b"log = info", b"log = debug")


def test_rollback_of_a_merge_then_new_edit_blocks(tpl: Project) -> None:
    """A rolled-back merge leaves the adopted edit; a new edit of it is a conflict, and
    without one the next deploy merges again."""
    tpl.ok("deploy")
    hand = edit(target(tpl), "# demo", "# demo, tuned by hand")
    tpl.ok("templates.adopt")
    change_template(tpl, "log = info", "log = debug")
    tpl.ok("deploy")
    merged = target(tpl).read_bytes()
    undo = tpl.json("rollback.templates")
    assert target(tpl).read_bytes() == hand

    edit(target(tpl), "workers = 2", "workers = 3")
    blocked(tpl, str(target(tpl)), f"edited since run {undo['run']} wrote it")
    target(tpl).write_bytes(hand)
    tpl.ok("deploy")
    assert target(tpl).read_bytes() == merged


def test_rollback_that_found_the_file_restored_leaves_no_false_conflict(tpl: Project) -> None:
    """A rollback that writes nothing (the file already holds what it would restore) still
    makes those bytes the reference: the next deploy is no conflict."""
    tpl.ok("deploy")
    first = target(tpl).read_bytes()
    change_template(tpl, "log = info", "log = debug")
    tpl.ok("deploy")
    target(tpl).write_bytes(first)  # put back by hand

    done = tpl.json("rollback.templates")
    tpl.ok("deploy")

    assert done["changes"] == []
    assert target(tpl).read_text() == RENDERED.replace("log = info", "log = debug")
