"""``deploy.templates``, ``templates.history`` and ``rollback.templates`` through the real CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import NO_FRAMEWORK_CONFIG, Project, assert_one_error_line

TEMPLATE = """
[[tool.deploy.templates]]
id = "app"
source = "tpl/app.conf.j2"
target = "target/conf/app.conf"

[tool.deploy.context]
project_name = "demo"
"""

# Five lines so that an edit at the top and one at the bottom merge cleanly.
BODY = "# {{ project_name }}\nport = 80\nhost = localhost\nworkers = 2\nlog = info\n"


@pytest.fixture
def tpl(project: Project) -> Project:
    """A project with one template, ``app``, rendered to target/conf/app.conf."""
    project.configure(TEMPLATE, base=NO_FRAMEWORK_CONFIG)
    project.write({"tpl/app.conf.j2": BODY})
    return project


def target(project: Project) -> Path:
    return project.target / "conf" / "app.conf"


def test_deploy_renders_the_template_and_records_render_1(tpl: Project) -> None:
    """The target holds the render; history lists render 1 with both hashes."""
    out = tpl.json("deploy.templates")

    history = tpl.json("templates.history", "app")

    assert target(tpl).read_text() == BODY.replace("{{ project_name }}", "demo")
    assert target(tpl).stat().st_mode & 0o777 == 0o644
    assert [c["action"] for c in out["changes"]] == ["create"]
    (render,) = history["renders"]
    assert render["n"] == 1 and render["run"] == out["run"]
    assert render["output_sha256"] == hashlib.sha256(target(tpl).read_bytes()).hexdigest()
    assert render["template_sha256"] == hashlib.sha256(BODY.encode()).hexdigest()
    assert render["backup_id"] is None


def test_second_deploy_of_an_unchanged_template_changes_nothing(tpl: Project) -> None:
    """Rendering the same bytes again is no change: no run, no backup."""
    tpl.write({"tpl/app.conf.j2": "at {{ deployed_at }}\n" + BODY})
    tpl.ok("deploy.templates")

    again = tpl.json("deploy.templates")

    assert again["run"] is None and again["changes"] == []
    assert len(tpl.json("templates.history", "app")["renders"]) == 1


@pytest.mark.parametrize(("text", "needles"), [
    pytest.param("ok\nport = {{ port }}\n", ["app.conf.j2:2:", "undefined variable 'port'"],
                 id="undefined"),
    pytest.param("ok\n\n{% for x in %}\n", ["app.conf.j2:3:", "template syntax error"],
                 id="syntax"),
])
def test_render_error_names_template_line_and_writes_nothing(tpl: Project, text: str,
                                                             needles: list[str]) -> None:
    """A template error exits 2 naming the template file and line; nothing at all is written,
    not even the scripts of the same release."""
    tpl.write({"bin/tool": "#!/bin/sh\necho tool\n", "tpl/app.conf.j2": text})
    before = tpl.snapshot()

    for task in ("deploy.templates", "deploy"):
        done = tpl.invoke(task)

        assert done.returncode == 2, done.stderr
        assert_one_error_line(done.stderr, *needles)
        assert tpl.snapshot() == before


def test_rollback_to_render_n_restores_render_n_exactly(tpl: Project) -> None:
    """--render 2 writes back render 2's output, not render 1's (the original's off-by-one)."""
    outputs = []
    for version in ("one", "two", "three"):
        tpl.write({"tpl/app.conf.j2": f"version = {version}\n" + BODY})
        tpl.ok("deploy.templates")
        outputs.append(target(tpl).read_bytes())

    done = tpl.json("rollback.templates", "--id", "app", "--render", "2")

    assert target(tpl).read_bytes() == outputs[1]
    history = tpl.json("templates.history", "app")["renders"]
    assert [r["n"] for r in history] == [3, 2, 1]
    assert history[1]["output_sha256"] == hashlib.sha256(outputs[1]).hexdigest()
    assert done["changes"][0]["backup"] is not None
    # The rollback is a run of its own, so undoing it brings render 3 back.
    tpl.ok("rollback.release", "--run", str(done["run"]))
    assert target(tpl).read_bytes() == outputs[2]


def test_rollback_to_an_unknown_render_exits_2(tpl: Project) -> None:
    """A render number that was never made is bad input, naming the renders there are."""
    tpl.ok("deploy.templates")
    before = tpl.snapshot()

    done = tpl.invoke("rollback.templates", "--id", "app", "--render", "7")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "no render 7", "renders: 1")
    assert tpl.snapshot() == before


def test_rollback_templates_undoes_the_latest_run(tpl: Project) -> None:
    """Without --render, rollback.templates steps back one run, then the next."""
    tpl.ok("deploy.templates")
    first = target(tpl).read_bytes()
    tpl.write({"tpl/app.conf.j2": "changed\n" + BODY})
    tpl.ok("deploy.templates")

    tpl.ok("rollback.templates")
    after_one = target(tpl).read_bytes()
    tpl.ok("rollback.templates")

    assert after_one == first
    assert not target(tpl).exists()


@pytest.mark.parametrize("bad", ["../x", "-rf", "a/b", ""])
def test_bad_template_id_exits_2(tpl: Project, bad: str) -> None:
    """A template id that could escape its folder is refused before anything happens."""
    before = tpl.snapshot()

    done = tpl.invoke("deploy.templates", "--id", bad)

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "template id")
    assert tpl.snapshot() == before


def edited(tpl: Project) -> tuple[bytes, dict[str, tuple[str, int]]]:
    """Deploy, edit the target's first line by hand, change the template's last line."""
    tpl.ok("deploy.templates")
    hand = target(tpl).read_bytes().replace(b"# demo", b"# demo, tuned by hand")
    target(tpl).write_bytes(hand)
    tpl.write({"tpl/app.conf.j2": BODY.replace("log = info", "log = debug")})
    return hand, tpl.snapshot()


def test_hand_edit_blocks_by_default_and_writes_nothing(tpl: Project) -> None:
    """--on-conflict fail (the default): exit 3 naming the file; nothing is written."""
    _hand, before = edited(tpl)

    done = tpl.invoke("deploy.templates")

    assert done.returncode == 3
    assert_one_error_line(done.stderr, str(target(tpl)), "edited since run 1")
    assert tpl.snapshot() == before


def test_hand_edit_kept(tpl: Project) -> None:
    """--on-conflict keep leaves the edited file as it is and says so."""
    hand, before = edited(tpl)

    done = tpl.ok("deploy.templates", "--on-conflict", "keep")

    assert target(tpl).read_bytes() == hand
    assert "kept" in done.stdout
    assert {k: v for k, v in tpl.snapshot().items() if "state" not in k} == \
        {k: v for k, v in before.items() if "state" not in k}


def test_hand_edit_overwritten_after_backing_it_up(tpl: Project) -> None:
    """--on-conflict overwrite: the backup holds the hand edit, the target the new render."""
    hand, _before = edited(tpl)

    out = tpl.json("deploy.templates", "--on-conflict", "overwrite")

    (change,) = out["changes"]
    backup = Path(change["backup"])
    assert backup.read_bytes() == hand
    assert backup.parent == tpl.tree / "templates" / "app"
    assert backup.name.startswith("app_") and backup.name.endswith(".backup")
    assert target(tpl).read_text() == BODY.replace("{{ project_name }}", "demo").replace(
        "log = info", "log = debug")


def test_hand_edit_merged_cleanly(tpl: Project) -> None:
    """--on-conflict merge: the hand edit (top) and the template change (bottom) both land."""
    hand, _before = edited(tpl)

    done = tpl.ok("deploy.templates", "--on-conflict", "merge")

    assert target(tpl).read_bytes() == hand.replace(b"log = info", b"log = debug")
    assert "merged" in done.stdout or "updated" in done.stdout
    # The merged file is ours now: the next default deploy is no conflict and no change.
    assert tpl.json("deploy.templates")["changes"] == []


def test_merge_conflict_exits_3_shows_hunks_and_writes_nothing(tpl: Project) -> None:
    """Both sides changed the same line: exit 3, the hunks on stdout, nothing written."""
    tpl.ok("deploy.templates")
    target(tpl).write_bytes(target(tpl).read_bytes().replace(b"port = 80", b"port = 8080"))
    tpl.write({"tpl/app.conf.j2": BODY.replace("port = 80", "port = 443")})
    before = tpl.snapshot()

    done = tpl.invoke("deploy.templates", "--on-conflict", "merge")

    assert done.returncode == 3
    assert_one_error_line(done.stderr, str(target(tpl)), "merge conflict")
    assert "port = 8080\n=======\nport = 443\n" in done.stdout
    assert tpl.snapshot() == before
    as_json = tpl.invoke("deploy", "--on-conflict", "merge", "--json")
    assert as_json.returncode == 3
    assert "port = 8080\n=======\nport = 443\n" in \
        json.loads(as_json.stdout)["conflict"]["hunks"]
    assert tpl.snapshot() == before


def test_existing_file_never_written_is_a_conflict(tpl: Project) -> None:
    """A target that exists before the first deploy is someone else's: exit 3."""
    tpl.write({"target/conf/app.conf": "not ours\n"})
    before = tpl.snapshot()

    done = tpl.invoke("deploy.templates")

    assert done.returncode == 3
    assert_one_error_line(done.stderr, "not written by this toolkit")
    assert tpl.snapshot() == before


def test_dry_run_shows_a_diff_and_writes_nothing(tpl: Project) -> None:
    """--dry-run prints the would-be change with its diff and leaves the tree as it was."""
    before = tpl.snapshot()

    done = tpl.ok("deploy.templates", "--dry-run")

    assert "would create" in done.stdout and "+port = 80" in done.stdout
    assert tpl.snapshot() == before


def test_unknown_on_conflict_value_exits_2(tpl: Project) -> None:
    """--on-conflict accepts only the four policies."""
    done = tpl.invoke("deploy.templates", "--on-conflict", "sometimes")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "--on-conflict 'sometimes'")


def test_history_json_shape_and_backup_of_later_renders(tpl: Project) -> None:
    """Each later render names the backup of the render before it."""
    tpl.ok("deploy.templates")
    tpl.write({"tpl/app.conf.j2": "v2\n" + BODY})
    tpl.ok("deploy.templates")

    renders = json.loads(tpl.ok("templates.history", "--id", "app", "--json").stdout)["renders"]

    assert renders[0]["n"] == 2 and renders[0]["backup_id"] is not None
    assert Path(renders[0]["backup"]).is_file()
    assert set(renders[0]) >= {"n", "template_sha256", "output_sha256", "backup_id", "backup",
                               "run"}
