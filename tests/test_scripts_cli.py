"""Scripts end to end through the real CLI: deploy, status, rollback, and the seed's failures."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import Project, assert_one_error_line


def script(version: str) -> str:
    return f"#!/bin/sh\necho {version}\n"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def deploy_fast(project: Project, contents: list[str], when: datetime) -> None:
    """Deploy each content in turn, in process, with the clock frozen at ``when``."""
    from deploy import scripts
    from deploy.config import load
    from deploy.store import Store, apply, open_session

    cfg = load(project.config_path)
    for content in contents:
        project.write({"bin/tool": content})
        with open_session(Store(cfg.state_dir), command="test", actor="test") as sess:
            sess.clock = lambda: when
            apply(sess, scripts.plan(cfg.scripts_source, cfg.scripts_target), kind="deploy")


def test_deploy_creates_backs_up_and_reports(project: Project) -> None:
    """A first deploy records the target as absent; a changed one is backed up under the
    contract's name with the old bytes exactly."""
    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})

    out = project.json("deploy.scripts")

    (change,) = out["changes"]
    assert change["action"] == "update"
    backup = Path(change["backup"])
    assert backup.parent == project.tree / "scripts"
    assert backup.name.startswith("tool_backup_") and len(backup.name) == len("tool_backup_") + 15
    assert backup.read_text() == script("v1")
    assert (project.target / "bin/tool").read_text() == script("v2")
    assert mode_of(project.target / "bin/tool") == 0o755
    assert sorted(p.name for p in project.tree.iterdir()) == [
        "framework", "index.sqlite", "lock", "parent_directory_manager", "scripts",
        "templates", "versions"]


def test_ten_deploys_in_one_second_step_back_one_by_one(project: Project) -> None:
    """Ten deploys within one second keep ten distinct backups; ten rollbacks step back one
    version each, in order (the original's same-second names overwrote each other)."""
    versions = [script(f"v{i}") for i in range(11)]
    deploy_fast(project, versions, datetime(2026, 11, 27, 9, 30, 0, 123000))

    names = sorted(p.name for p in (project.tree / "scripts").iterdir())
    assert names == ["tool_backup_20261127_093000"] + [
        f"tool_backup_20261127_093000_{i:02d}" for i in range(1, 10)]
    tool = project.target / "bin/tool"
    assert tool.read_text() == versions[10]
    for i in range(9, -1, -1):
        project.ok("rollback.scripts")
        assert tool.read_text() == versions[i], i
        assert mode_of(tool) == 0o755
    project.ok("rollback.scripts")
    assert not tool.exists()
    assert "nothing to roll back" in project.ok("rollback.scripts").stdout


def test_mtimes_do_not_choose_the_backup(project: Project) -> None:
    """Backups whose mtimes are rewritten (1985, the future) change neither what rollback
    picks nor what status calls newest: order comes from the index."""
    for version in ("v1", "v2", "v3"):
        project.write({"bin/tool": script(version)})
        project.ok("deploy.scripts")
    backups = project.json("backups.list")["backups"]
    newest, older = Path(backups[0]["path"]), Path(backups[1]["path"])
    os.utime(newest, (499132800, 499132800))  # 1985-10-26
    os.utime(older, (4102444800, 4102444800))  # 2100-01-01

    status = project.json("backups.status")["categories"]["scripts"]
    assert [b["path"] for b in status["backups"]] == [str(newest), str(older)]
    project.ok("rollback.scripts")

    assert (project.target / "bin/tool").read_text() == script("v2")


def test_no_change_writes_nothing(project: Project) -> None:
    """A deploy with nothing changed writes nothing, makes no backup and records no run."""
    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    before = project.snapshot()

    out = project.json("deploy.scripts")
    again = project.ok("deploy.scripts")

    assert out["run"] is None and out["changes"] == []
    assert "nothing to do" in again.stdout
    after = project.snapshot()
    assert after == before
    assert len(project.json("history")["runs"]) == 1


def test_mode_kept_through_deploy_and_rollback(project: Project) -> None:
    """Deployed scripts are 0755; rollback brings back the old mode too; no temp is left."""
    project.write({"target/bin/tool": "old\n"}, mode=0o700)
    project.write({"bin/tool": script("v1")}, mode=0o644)

    project.ok("deploy.scripts")
    assert mode_of(project.target / "bin/tool") == 0o755
    project.ok("rollback.scripts")

    assert (project.target / "bin/tool").read_text() == "old\n"
    assert mode_of(project.target / "bin/tool") == 0o700
    leftovers = [p for p in project.root.rglob("*") if ".deploy-tmp-" in p.name]
    assert leftovers == []


def test_mode_only_change_is_a_change(project: Project) -> None:
    """A target with the right bytes but the wrong mode is backed up and fixed."""
    project.write({"bin/tool": script("v1"), "target/bin/tool": script("v1")})
    (project.target / "bin/tool").chmod(0o600)

    out = project.json("deploy.scripts")

    assert [c["action"] for c in out["changes"]] == ["update"]
    assert mode_of(project.target / "bin/tool") == 0o755


@pytest.mark.parametrize("name", [
    pytest.param("../x", id="dotdot-slash"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("a/b", id="separator"),
    pytest.param("..", id="dotdot"),
    pytest.param("-rf", id="leading-dash"),
    pytest.param("", id="empty"),
    pytest.param("x" * 300, id="300-bytes"),
])
def test_hostile_names_exit_2_and_write_nothing(project: Project, name: str) -> None:
    """Hostile script names are refused before any use: exit 2, one error line, no writes."""
    project.write({"bin/tool": script("v1")})
    before = project.snapshot()

    deploy = project.invoke("deploy.scripts", f"--name={name}")
    rollback = project.invoke("rollback.scripts", f"--name={name}")

    assert deploy.returncode == 2, deploy.stderr
    assert_one_error_line(deploy.stderr, "name")
    assert rollback.returncode == 2, rollback.stderr
    assert project.snapshot() == before


def test_flipped_byte_in_backup_blocks_rollback(project: Project) -> None:
    """A backup whose bytes no longer match the index makes rollback refuse (exit 1, naming
    the file) and leaves the target as it is."""
    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    backup = Path(project.json("deploy.scripts")["changes"][0]["backup"])
    data = bytearray(backup.read_bytes())
    data[3] ^= 0x01
    backup.write_bytes(bytes(data))

    done = project.invoke("rollback.scripts")
    verify = project.invoke("backups.verify")

    assert done.returncode == 1
    assert_one_error_line(done.stderr, str(backup), "corrupt")
    assert (project.target / "bin/tool").read_text() == script("v2")
    assert verify.returncode == 1 and str(backup) in verify.stderr


def test_missing_backup_blocks_rollback(project: Project) -> None:
    """A deleted backup file makes rollback exit 1 naming it; nothing is restored."""
    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    backup = Path(project.json("deploy.scripts")["changes"][0]["backup"])
    backup.unlink()

    done = project.invoke("rollback.scripts")

    assert done.returncode == 1
    assert_one_error_line(done.stderr, str(backup), "missing")
    assert (project.target / "bin/tool").read_text() == script("v2")


@pytest.mark.parametrize("task", [
    pytest.param(("deploy.scripts",), id="deploy"),
    pytest.param(("rollback.scripts",), id="rollback"),
    pytest.param(("backups.prune",), id="prune"),
    pytest.param(("rollback.release",), id="release"),
])
def test_dry_run_leaves_tree_byte_identical(project: Project, task: tuple[str, ...]) -> None:
    """--dry-run prints the plan but writes nothing: no target, backup, row, folder or lock."""
    project.write({"bin/tool": script("v1"), "bin/other": script("o1")})
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2"), "bin/new": script("n1")})
    before = project.snapshot()

    done = project.ok(*task, "--dry-run")

    assert project.snapshot() == before
    if task[0] == "deploy.scripts":
        assert "+echo v2" in done.stdout and "-echo v1" in done.stdout


def test_dry_run_on_a_fresh_machine_creates_nothing(project: Project) -> None:
    """Before any run, --dry-run does not even create the state dir."""
    project.write({"bin/tool": script("v1")})

    project.ok("deploy.scripts", "--dry-run")
    project.ok("history")
    project.ok("backups.status")

    assert not project.state.exists()
    assert not project.target.exists()


def test_drift_blocks_rollback_unless_forced(project: Project) -> None:
    """A target edited after the deploy blocks rollback (exit 3); --force backs up the edit
    and restores, and that rollback can itself be undone."""
    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    project.ok("deploy.scripts")
    (project.target / "bin/tool").write_text("hand edit\n")

    blocked = project.invoke("rollback.scripts")
    forced = project.json("rollback.scripts", "--force")

    assert blocked.returncode == 3
    assert_one_error_line(blocked.stderr, str(project.target / "bin/tool"), "--force")
    assert (project.target / "bin/tool").read_text() == script("v1")
    assert Path(forced["changes"][0]["backup"]).read_text() == "hand edit\n"
    project.ok("rollback.release", f"--run={forced['run']}")
    assert (project.target / "bin/tool").read_text() == "hand edit\n"


def test_status_reports_each_state(project: Project) -> None:
    """scripts.status tells synchronized, outdated, drifted, not deployed and source missing;
    --verify runs each deployed script's --version."""
    project.write({"bin/sync": script("s"), "bin/out": script("o1"), "bin/drift": script("d"),
                   "bin/gone": script("g")})
    project.ok("deploy.scripts")
    project.write({"bin/out": script("o2"), "bin/new": script("n"),
                   "target/bin/drift": "#!/bin/sh\necho edited\n"})
    (project.root / "bin/gone").unlink()

    done = project.invoke("scripts.status", "--verify", "--json")
    rows = json.loads(done.stdout)["scripts"]

    assert done.returncode == 3  # not every script is up to date: a CI gate fails
    assert_one_error_line(done.stderr, "4 script(s) not up to date")
    states = {r["name"]: r["state"] for r in rows}
    assert states == {"sync": "synchronized", "out": "outdated", "drift": "drifted",
                      "new": "not deployed", "gone": "source missing"}
    versions = {r["name"]: r["version"] for r in rows}
    assert versions["sync"] == "s" and versions["new"] is None


def test_status_gates_ci(project: Project) -> None:
    """scripts.status exits 0 when every script is synchronized, 3 naming the drifted one,
    and 1 when --verify's run of a script fails (it used to print `error: exit 1` and
    exit 0)."""
    project.write({"bin/ok": script("fine"), "bin/bad": "#!/bin/sh\nexit 1\n"})
    project.ok("deploy.scripts")

    clean = project.invoke("scripts.status")
    failing = project.invoke("scripts.status", "--verify")
    (project.target / "bin/ok").write_text("#!/bin/sh\necho edited\n")
    drifted = project.invoke("scripts.status")

    assert clean.returncode == 0, clean.stderr
    assert failing.returncode == 1
    assert_one_error_line(failing.stderr, str(project.target / "bin/bad"), "error: exit 1")
    assert drifted.returncode == 3
    assert_one_error_line(drifted.stderr, str(project.target / "bin/ok"), "drifted")


def test_rollback_to_a_named_backup(project: Project) -> None:
    """--to BACKUP_ID restores that backup into its own target."""
    for version in ("v1", "v2", "v3"):
        project.write({"bin/tool": script(version)})
        project.ok("deploy.scripts")
    first = project.json("backups.list")["backups"][-1]

    project.ok("rollback.scripts", f"--to={first['id']}")

    assert (project.target / "bin/tool").read_text() == script("v1")


def test_rollback_narrowed_by_name(project: Project) -> None:
    """--name undoes only that script's change of the latest run that touched it."""
    project.write({"bin/a": script("a1"), "bin/b": script("b1")})
    project.ok("deploy.scripts")
    project.write({"bin/a": script("a2"), "bin/b": script("b2")})
    project.ok("deploy.scripts")

    project.ok("rollback.scripts", "--name=a")

    assert (project.target / "bin/a").read_text() == script("a1")
    assert (project.target / "bin/b").read_text() == script("b2")
    project.ok("rollback.scripts")
    assert (project.target / "bin/b").read_text() == script("b1")
    assert (project.target / "bin/a").read_text() == script("a1")


def test_history_and_json_shapes(project: Project) -> None:
    """history, backups.list and backups.status carry the contract's JSON keys."""
    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    project.write({"bin/tool": script("v2")})
    project.ok("deploy.scripts")
    project.ok("rollback.scripts")

    runs = project.json("history")["runs"]
    backups = project.json("backups.list", "--category=scripts")["backups"]
    status = project.json("backups.status")["categories"]

    assert [r["kind"] for r in runs] == ["rollback", "deploy", "deploy"]
    assert [r["state"] for r in runs] == ["done", "undone", "done"]
    assert {"id", "kind", "actor", "started", "finished", "state", "categories",
            "changed"} <= runs[0].keys()
    assert runs[0]["categories"] == ["scripts"]
    assert {"id", "category", "target", "filename", "path", "size", "created", "sha256",
            "run"} <= backups[0].keys()
    assert set(status) == {"scripts", "versions", "templates", "framework", "parents"}
    assert status["scripts"]["backup_count"] == 2
    assert {"filename", "path", "size", "created", "age_hours", "target", "sha256"} <= \
        status["scripts"]["backups"][0].keys()


def test_prefix_stages_targets_and_state(project: Project, tmp_path: Path) -> None:
    """--prefix (and DEPLOY_PREFIX) stage every target and the state dir under a folder."""
    project.write({"bin/tool": script("v1")})
    stage = tmp_path / "stage"

    project.ok("deploy.scripts", f"--prefix={stage}")
    project.ok("deploy.scripts", env={"DEPLOY_PREFIX": str(stage)})

    staged = stage / str(project.target / "bin/tool").lstrip("/")
    assert staged.read_text() == script("v1")
    assert not project.target.exists() and not project.state.exists()
    assert (stage / str(project.tree).lstrip("/") / "index.sqlite").exists()


def test_second_run_exits_4_naming_the_holder(project: Project) -> None:
    """While another process holds the lock, a run exits 4 naming its pid and command."""
    import fcntl

    project.write({"bin/tool": script("v1")})
    project.ok("deploy.scripts")
    lock = project.tree / "lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": 4242, "command": "invoke deploy",
                                  "started": "2026-11-27T10:00:00"}).encode(), 0)
        project.write({"bin/tool": script("v2")})
        done = project.invoke("deploy.scripts", "--wait=1")
    finally:
        os.close(fd)

    assert done.returncode == 4
    assert_one_error_line(done.stderr, "pid 4242", "invoke deploy", "2026-11-27T10:00:00")
    assert (project.target / "bin/tool").read_text() == script("v1")
    assert lock.exists()


def test_config_errors_exit_2_naming_the_key(project: Project) -> None:
    """Unknown keys and wrong types are exit 2 naming the key; no traceback."""
    project.configure("\n[tool.deploy.backup]\nretention_dayz = 3\n")
    unknown = project.invoke("deploy.scripts")
    project.configure("\n[tool.deploy.backup]\nretention_days = \"3\"\n")
    wrong = project.invoke("backups.status")

    assert unknown.returncode == 2
    assert_one_error_line(unknown.stderr, "tool.deploy.backup.retention_dayz")
    assert wrong.returncode == 2
    assert_one_error_line(wrong.stderr, "retention_days")


def test_github_actions_error_and_summary(project: Project, tmp_path: Path) -> None:
    """Under GitHub Actions an error also prints ::error and a run appends a step summary."""
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    project.write({"bin/tool": script("v1")})

    project.ok("deploy.scripts", env=env)
    bad = project.invoke("deploy.scripts", "--name=../x", env=env)

    assert "| create | `" in summary.read_text()
    assert bad.returncode == 2
    assert any(line.startswith("::error") for line in bad.stderr.splitlines())


def test_index_sequence_orders_everything(project: Project) -> None:
    """The index's sequence numbers increase with no gaps across runs and rollbacks."""
    for version in ("v1", "v2", "v3"):
        project.write({"bin/tool": script(version), "bin/x": script(version)})
        project.ok("deploy.scripts")
    project.ok("rollback.scripts")

    with closing(sqlite3.connect(f"file:{project.tree / 'index.sqlite'}?mode=ro", uri=True)) as db:
        seqs = [row[0] for row in db.execute("SELECT seq FROM changes ORDER BY seq")]

    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) == 8


def test_on_conflict_is_accepted_and_checked(project: Project) -> None:
    """deploy.scripts takes --on-conflict like every deploy task (scripts never conflict);
    a bad policy is exit 2 before anything is written."""
    project.write({"bin/tool": script("v1")})

    bad = project.invoke("deploy.scripts", "--on-conflict=bogus")
    project.ok("deploy.scripts", "--on-conflict=keep")

    assert bad.returncode == 2
    assert_one_error_line(bad.stderr, "--on-conflict")
    assert (project.target / "bin/tool").read_text() == script("v1")


def test_large_script_backs_up_and_rolls_back_byte_for_byte(project: Project) -> None:
    """A script past the large-file threshold (copied with its hash on a second thread,
    its backup kept out of the page cache) deploys, backs up its old bytes exactly, and
    rolls back to them; the index holds the real hashes."""
    import hashlib

    from deploy import fsio

    old = os.urandom(fsio.LARGE + 12345)
    new = old[:100] + b"changed" + old[107:] + b"tail"
    project.write({"bin/big": old})
    project.ok("deploy.scripts")
    project.write({"bin/big": new})

    (change,) = project.json("deploy.scripts")["changes"]

    target = project.target / "bin/big"
    assert Path(change["backup"]).read_bytes() == old
    assert target.read_bytes() == new
    with closing(sqlite3.connect(project.tree / "index.sqlite")) as db:
        row = db.execute("SELECT old_sha256, new_sha256 FROM changes ORDER BY seq DESC LIMIT 1"
                         ).fetchone()
    assert row == (hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest())
    project.ok("rollback.scripts")
    assert target.read_bytes() == old and mode_of(target) == 0o755
