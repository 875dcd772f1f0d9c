"""Everyday paths a new user hit: each says what is true and exits as it should."""

from __future__ import annotations

import pytest

from tests.conftest import NO_FRAMEWORK_CONFIG, Project, assert_one_error_line
from tests.test_templates_cli import BODY, TEMPLATE


@pytest.mark.parametrize("task", [["templates.history", "--id", "nope"],
                                  ["rollback.templates", "--id", "nope"],
                                  ["rollback.templates", "--id", "nope", "--render", "1"]],
                         ids=["history", "rollback", "rollback-render"])
def test_an_unknown_template_id_exits_2_naming_the_configured_ones(project: Project,
                                                                   task: list[str]) -> None:
    """A template id that is neither configured nor ever deployed is exit 2, not a quiet
    "no renders" with exit 0."""
    project.configure(TEMPLATE)
    project.write({"tpl/app.conf.j2": BODY})

    done = project.invoke(*task)

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_error_line(done.stderr, "'nope'", "configured: app")


def test_a_page_past_the_end_says_so(project: Project) -> None:
    """`history --page 999` says how many runs there are, not "no runs yet"; the listing
    has column headers."""
    project.write({"bin/a": "#!/bin/sh\n"})
    project.ok("deploy.scripts")

    far = project.ok("history", "--page", "999").stdout
    first = project.ok("history").stdout.splitlines()

    assert far.strip() == "no runs on page 999: 1 run(s) in all, 50 a page"
    assert first[0].split()[:4] == ["run", "started", "kind", "state"]
    listing = project.ok("backups.list").stdout
    assert listing == "no backups yet\n"


def test_a_dry_run_diff_marks_a_missing_final_newline(project: Project) -> None:
    """A version file without a final newline diffs like `diff -u` does: `-003`, its
    marker, `+004`, its marker, each on its own line."""
    project.write({"versions/MEMORY_VERSION": "003"})

    out = project.ok("versions.bump", "memory", "--dry-run").stdout

    assert "-003\n\\ No newline at end of file\n+004\n\\ No newline at end of file\n" in out


def test_backups_status_lists_as_many_as_limit_says(project: Project) -> None:
    """The text form of `backups.status` shows up to --limit backups per category (it
    stopped at 5 whatever --limit said)."""
    for k in range(8):
        project.write({"bin/a": f"#!/bin/sh\necho {k}\n"})
        project.ok("deploy.scripts")

    text = project.ok("backups.status", "--limit", "7").stdout

    assert text.count("a_backup_") == 7


def test_templates_status_gates_ci(project: Project) -> None:
    """templates.status names each rendered file's state: absent before the first deploy,
    up to date after it (exit 0), edited by hand after an edit and outdated after a template
    change (exit 3 naming them)."""
    project.configure(TEMPLATE, base=NO_FRAMEWORK_CONFIG)
    project.write({"tpl/app.conf.j2": BODY})
    before = project.invoke("templates.status", "--json")
    project.ok("deploy")
    clean = project.invoke("templates.status")
    target = project.target / "conf" / "app.conf"
    target.write_text(target.read_text() + "# mine\n")
    edited = project.invoke("templates.status", "--json")
    target.write_text(target.read_text().replace("# mine\n", ""))
    project.write({"tpl/app.conf.j2": BODY + "extra = 1\n"})
    outdated = project.invoke("templates.status")

    import json

    assert before.returncode == 3
    assert {f["key"]: f["state"] for f in json.loads(before.stdout)["files"]}["app"] == "absent"
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert edited.returncode == 3
    assert {f["key"]: f["state"] for f in json.loads(edited.stdout)["files"]}["app"] == \
        "edited by hand"
    assert outdated.returncode == 3
    assert_one_error_line(outdated.stderr, str(target), "outdated")
