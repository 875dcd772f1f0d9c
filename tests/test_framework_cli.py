"""``deploy.framework``, ``rollback.framework``, ``rollback.parents`` and the whole
``invoke deploy`` release, through the real CLI."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG, NO_FRAMEWORK_CONFIG, REPO, Project, assert_one_error_line

FRAMEWORK = ("# Claude PM {{ framework_version }}\nfor: {{ parent_dir }}\n"
             "memory {{ versions.memory }}\n")
FRAMEWORK_NAME = re.compile(r"framework_CLAUDE_md_\d{8}_\d{6}_\d{3}(_\d{2})?\.backup\Z")
PARENT_NAME = re.compile(r"CLAUDE\.md_\d{8}_\d{6}(_\d{2})?\.backup\Z")


def with_parents(project: Project, *parents: str, extra: str = "") -> None:
    listed = ", ".join(f'"{p}"' for p in parents)
    project.configure(extra, base=BASE_CONFIG.replace("parents = []", f"parents = [{listed}]"))


@pytest.fixture
def fw(project: Project) -> Project:
    """A project with a framework template, version files and two parent folders."""
    project.write({"tpl/CLAUDE.md": FRAMEWORK, "versions/VERSION": "0.7.5\n",
                   "versions/MEMORY_VERSION": "004\n"})
    (project.root / "p1").mkdir()
    (project.root / "p2").mkdir()
    with_parents(project, "p1", "p2")
    return project


def installed(project: Project) -> Path:
    return project.target / "framework" / "CLAUDE.md"


def outside_state(project: Project) -> dict[str, tuple[str, int]]:
    """The project's snapshot without the state dir (which a run always changes)."""
    return {k: v for k, v in project.snapshot().items() if not k.startswith("state")}


def test_installs_as_is_and_renders_into_each_parent(fw: Project) -> None:
    """install_to gets the template's bytes unrendered; each parent gets it rendered."""
    out = fw.json("deploy.framework")

    assert installed(fw).read_text() == FRAMEWORK
    for name in ("p1", "p2"):
        text = (fw.root / name / "CLAUDE.md").read_text()
        assert text == f"# Claude PM 0.7.5\nfor: {fw.root / name}\nmemory 004\n"
    assert sorted(c["category"] for c in out["changes"]) == ["framework", "parents", "parents"]


def test_backup_names_follow_the_contract(fw: Project) -> None:
    """Framework backups are framework_CLAUDE_md_{ts_ms}.backup; parents CLAUDE.md_{ts}.backup,
    named after the file, not the folder."""
    fw.ok("deploy.framework")
    fw.write({"tpl/CLAUDE.md": "v2\n" + FRAMEWORK})

    out = fw.json("deploy.framework")

    names = {c["category"]: [] for c in out["changes"]}
    for c in out["changes"]:
        names[c["category"]].append(Path(c["backup"]))
    (framework_backup,) = names["framework"]
    assert framework_backup.parent == fw.tree / "framework"
    assert FRAMEWORK_NAME.match(framework_backup.name), framework_backup.name
    for backup in names["parents"]:
        assert backup.parent == fw.tree / "parent_directory_manager"
        assert PARENT_NAME.match(backup.name), backup.name


def test_rotation_keeps_the_newest_two_by_sequence_not_mtime(fw: Project) -> None:
    """framework_keep = 2 keeps the two newest framework backups by sequence number, even
    when their mtimes say 1985 (the original sorted by mtime and deleted the newest)."""
    with_parents(fw)
    versions = [f"framework v{i}\n" for i in range(1, 6)]
    for text in versions[:4]:
        fw.write({"tpl/CLAUDE.md": text})
        fw.ok("deploy.framework")
    folder = fw.tree / "framework"
    for backup in folder.iterdir():
        os.utime(backup, (489_000_000, 489_000_000))  # 1985
    fw.write({"tpl/CLAUDE.md": versions[4]})

    fw.ok("deploy.framework")

    kept = sorted(p.read_text() for p in folder.iterdir())
    assert kept == [versions[2], versions[3]]
    listed = fw.json("backups.list", "--category", "framework")["backups"]
    assert sorted(Path(b["path"]).read_text() for b in listed) == kept
    assert installed(fw).read_text() == versions[4]


def two_parents_deployed(fw: Project) -> dict[str, bytes]:
    """Both parents hold a hand-written CLAUDE.md; one run overwrites both (same second)."""
    originals = {"p1": b"parent one's own notes\n", "p2": b"parent two's own notes\n"}
    for name, data in originals.items():
        (fw.root / name / "CLAUDE.md").write_bytes(data)
    out = fw.json("deploy.framework", "--on-conflict", "overwrite")
    backups = sorted(Path(c["backup"]).name for c in out["changes"] if c["category"] == "parents")
    # One run, one timestamp: the second name got the collision counter.
    assert len(backups) == 2 and backups[1] == backups[0].replace(".backup", "_01.backup")
    return originals


def test_two_parents_in_the_same_second_each_restore_their_own_file(fw: Project) -> None:
    """rollback.parents gives each folder its own CLAUDE.md back, not its neighbour's."""
    originals = two_parents_deployed(fw)

    fw.ok("rollback.parents")

    for name, data in originals.items():
        assert (fw.root / name / "CLAUDE.md").read_bytes() == data


def test_rollback_parents_dir_restores_only_that_folder(fw: Project) -> None:
    """--dir narrows the rollback to one configured parent; the other is untouched."""
    originals = two_parents_deployed(fw)
    rendered_p1 = (fw.root / "p1" / "CLAUDE.md").read_bytes()

    fw.ok("rollback.parents", "--dir", str(fw.root / "p2"))
    first = (fw.root / "p1" / "CLAUDE.md").read_bytes()
    fw.ok("rollback.parents", "--dir", "p1")

    assert first == rendered_p1
    assert (fw.root / "p2" / "CLAUDE.md").read_bytes() == originals["p2"]
    assert (fw.root / "p1" / "CLAUDE.md").read_bytes() == originals["p1"]


@pytest.mark.parametrize("bad", ["elsewhere", "p1/..", "/"])
def test_dir_outside_the_configured_parents_exits_2(fw: Project, bad: str) -> None:
    """--dir must be one of the configured parents once resolved."""
    (fw.root / "elsewhere").mkdir()
    fw.ok("deploy.framework")
    before = fw.snapshot()

    done = fw.invoke("rollback.parents", "--dir", bad)

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "not one of the configured parent folders")
    assert fw.snapshot() == before


def test_rollback_framework_undoes_the_install(fw: Project) -> None:
    """rollback.framework puts the previous installed template back, parents untouched."""
    fw.ok("deploy.framework")
    fw.write({"tpl/CLAUDE.md": "v2\n" + FRAMEWORK})
    fw.ok("deploy.framework")
    parent = (fw.root / "p1" / "CLAUDE.md").read_bytes()

    fw.ok("rollback.framework")

    assert installed(fw).read_text() == FRAMEWORK
    assert (fw.root / "p1" / "CLAUDE.md").read_bytes() == parent


def test_hand_edited_parent_blocks_the_framework_deploy(fw: Project) -> None:
    """A parent CLAUDE.md edited by hand is a conflict: exit 3, nothing written."""
    fw.ok("deploy.framework")
    (fw.root / "p2" / "CLAUDE.md").write_text("edited\n")
    fw.write({"tpl/CLAUDE.md": "v2\n" + FRAMEWORK})
    before = fw.snapshot()

    done = fw.invoke("deploy.framework")

    assert done.returncode == 3
    assert_one_error_line(done.stderr, str(fw.root / "p2" / "CLAUDE.md"))
    assert fw.snapshot() == before


def test_missing_configured_framework_template_exits_2(project: Project) -> None:
    """A framework.template that is set but missing stops deploy.framework and deploy alike
    (exit 2, like a missing scripts.source), before anything is written."""
    project.write({"bin/tool": "#!/bin/sh\n"})

    done = project.invoke("deploy.framework")
    release = project.invoke("deploy")
    status = project.invoke("templates.status")

    for run in (done, release, status):
        assert run.returncode == 2, run
        assert_one_error_line(run.stderr, "tpl/CLAUDE.md", "framework template not found")
    assert not (project.target / "bin" / "tool").exists()
    assert not project.tree.exists()


def test_missing_default_framework_template_is_a_visible_skip(project: Project) -> None:
    """Without framework.template, the default template missing is a skip deploy shows."""
    project.write({"bin/tool": "#!/bin/sh\n"})
    project.configure(base=NO_FRAMEWORK_CONFIG)

    framework_only = project.invoke("deploy.framework")
    release = project.ok("deploy")

    assert framework_only.returncode == 2
    assert_one_error_line(framework_only.stderr, "templates/framework/CLAUDE.md")
    assert (project.target / "bin" / "tool").is_file()
    assert "no framework template at" in release.stdout
    assert "templates/framework/CLAUDE.md" in release.stdout
    assert 'or to "bundled" for the one this toolkit ships' in release.stdout


SHIPPED = REPO / "templates" / "framework" / "CLAUDE.md"


def test_bundled_is_the_template_the_toolkit_ships(project: Project) -> None:
    """``framework.template = "bundled"`` installs the shipped template as is, renders it
    into each parent (it guards every variable, so it renders in a project without version
    files), reports its real path, and rolls back like any other template."""
    (project.root / "p1").mkdir()
    project.configure(base=BASE_CONFIG.replace('"tpl/CLAUDE.md"', '"bundled"')
                      .replace("parents = []", 'parents = ["p1"]'))

    first = project.json("deploy.framework")
    landed = installed(project).read_bytes()
    rendered = (project.root / "p1" / "CLAUDE.md").read_text()
    status = project.json("backups.status")
    again = project.json("deploy.framework")
    project.ok("rollback.framework")
    project.ok("rollback.parents")

    assert landed == SHIPPED.read_bytes()
    assert rendered.startswith(f"# Claude PM Framework Configuration - {project.root / 'p1'}\n")
    assert sorted(c["category"] for c in first["changes"]) == ["framework", "parents"]
    assert again["changes"] == []
    assert status["framework_template_path"] == str(SHIPPED.resolve())
    assert status["framework_template_exists"] is True
    assert not installed(project).exists()
    assert not (project.root / "p1" / "CLAUDE.md").exists()


def test_a_file_named_bundled_is_written_as_a_path(project: Project) -> None:
    """Only the bare word names the shipped template; ``./bundled`` is the project's file."""
    project.write({"bundled": "# mine\n"})
    project.configure(base=BASE_CONFIG.replace('"tpl/CLAUDE.md"', '"./bundled"'))

    project.ok("deploy.framework")

    assert installed(project).read_text() == "# mine\n"


RELEASE_TEMPLATES = """
[[tool.deploy.templates]]
id = "app"
source = "tpl/app.conf.j2"
target = "target/conf/app.conf"

[[tool.deploy.templates]]
id = "memory"
source = "tpl/memory.yaml.j2"
target = "target/conf/memory.yaml"
"""


@pytest.fixture
def release(fw: Project) -> Project:
    """Scripts, framework, two parents and two templates, over a tree that already holds
    some of the targets (with their own modes)."""
    with_parents(fw, "p1", "p2", extra=RELEASE_TEMPLATES)
    fw.write({"bin/tool": "#!/bin/sh\necho new tool\n", "bin/helper": "#!/bin/sh\necho hi\n",
              "tpl/app.conf.j2": "app for {{ versions.memory }}\n",
              "tpl/memory.yaml.j2": "memory: {{ versions.memory }}\n"})
    fw.write({"target/bin/tool": "#!/bin/sh\necho old tool\n"}, mode=0o700)
    fw.write({"target/conf/memory.yaml": "hand written\n"}, mode=0o600)
    fw.write({"p1/CLAUDE.md": "p1 notes\n"}, mode=0o640)
    (fw.target / "framework").mkdir(parents=True)
    return fw


def test_release_is_one_run_and_rolls_back_byte_identical(release: Project) -> None:
    """invoke deploy writes every category in one run; rollback.release restores the tree
    byte for byte, modes too; rolling back that rollback brings the release back."""
    before = outside_state(release)

    out = release.json("deploy", "--on-conflict", "overwrite")
    deployed = outside_state(release)
    runs = release.json("history")["runs"]
    undo = release.json("rollback.release")
    restored = outside_state(release)
    release.ok("rollback.release", "--run", str(undo["run"]))

    assert len(runs) == 1 and runs[0]["id"] == out["run"] and runs[0]["state"] == "done"
    assert set(runs[0]["categories"]) == {"scripts", "framework", "parents", "templates"}
    assert len(out["changes"]) == 7
    assert deployed != before
    assert restored == before
    assert outside_state(release) == deployed


def test_failure_at_each_target_restores_every_target(release: Project,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A write failing at the k-th of n targets (ENOSPC from the real write path) leaves
    every target as it was and records the run as failed, for every k."""
    from deploy import config, fsio
    from deploy import release as rel
    from deploy.errors import WriteFailed
    from deploy.store import Index, Store, apply, open_session

    cfg = config.load(release.config_path)
    store = Store(cfg.state_dir)
    before = outside_state(release)
    real_commit, real_create = fsio.commit_temp, fsio.create_from_temp
    with open_session(store, command="probe", actor="test") as sess:
        count = len(rel.plan(cfg, sess.index, on_conflict="overwrite").changes)
    assert count == 7

    for k in range(count):
        failing: list[Path] = []

        def put(real: Any, failing: list[Path] = failing) -> Any:
            def put_in_place(tmp: Path, target: Path) -> None:
                if failing and target == failing[0]:
                    raise OSError(errno.ENOSPC, "No space left on device", str(target))
                real(tmp, target)
            return put_in_place

        def before_target(i: int, change: object, k: int = k,
                          failing: list[Path] = failing) -> None:
            if i == k:
                failing.append(change.target)  # type: ignore[attr-defined]

        monkeypatch.setattr(fsio, "commit_temp", put(real_commit))
        monkeypatch.setattr(fsio, "create_from_temp", put(real_create))
        with open_session(store, command="fault", actor="test") as sess:
            sess.before_target = before_target
            plan = rel.plan(cfg, sess.index, on_conflict="overwrite")
            with pytest.raises(WriteFailed) as caught:
                apply(sess, plan, kind="deploy")
        monkeypatch.setattr(fsio, "commit_temp", real_commit)
        monkeypatch.setattr(fsio, "create_from_temp", real_create)

        assert "No space left on device" in str(caught.value)
        assert f"restored the {k} target(s)" in str(caught.value)
        assert outside_state(release) == before, k
        assert not [p for p in release.root.rglob("*") if ".deploy-tmp-" in p.name], k
        with closing(Index(store.index_path, readonly=True)) as index:
            assert index.runs.newest(limit=1)[0].state == "failed"

    release.ok("deploy", "--on-conflict", "overwrite")
    assert outside_state(release) != before


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace for fault injection")
@pytest.mark.parametrize(("syscall", "expected"), [
    # Three existing targets are backed up and then replaced: six renames.
    pytest.param("rename", 6, id="rename"),
    # Four new targets are put in place with link(2), which never replaces a file.
    pytest.param("link", 4, id="link"),
])
def test_release_survives_a_failed_syscall_at_every_step(release: Project, syscall: str,
                                                         expected: int) -> None:
    """strace fails the N-th rename or link (backups, then targets) for every N: each failed
    run exits 1 with one error line, every target as before, and history says failed."""
    before = outside_state(release)
    env = {**os.environ, "DEPLOY_CONFIG": str(release.config_path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    failures = 0
    for when in range(1, 40):
        # Each attempt starts from an empty tree: a failed run's backups stay in it, and the
        # next attempt's equal backups would be hard links to them (dedupe), not renames.
        shutil.rmtree(release.state, ignore_errors=True)
        done = subprocess.run(
            ["strace", "-f", "-qq", "-o", os.devnull, "-e", f"trace={syscall}",
             "-e", f"inject={syscall}:error=EIO:when={when}",
             sys.executable, "-m", "invoke", "--search-root", str(REPO), "deploy",
             "--on-conflict", "overwrite"],
            cwd=release.root, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0:
            break
        failures += 1
        assert done.returncode == 1, done.stderr
        assert_one_error_line(done.stderr, "Input/output error")
        assert outside_state(release) == before, when
        assert release.json("history")["runs"][0]["state"] == "failed"
    else:
        pytest.fail("the release never succeeded")

    assert failures == expected
    assert outside_state(release) != before
