"""Versions end to end through the real CLI: show, bump, bulk, check and rollback.versions."""

from __future__ import annotations

import re
import sqlite3
import stat
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import Project, assert_one_error_line

VERSIONS = {"MEMORY_VERSION": "003\n", "AGENTS_VERSION": "009\n", "CLI_VERSION": "0.7.5\n",
            "VERSION": "0.7.5\n"}
STAMP = r"\d{8}_\d{6}"


@pytest.fixture
def vproject(project: Project) -> Project:
    """A project whose versions folder holds a few subsystems and a VERSION file."""
    project.write({f"versions/{name}": data for name, data in VERSIONS.items()})
    return project


def vfile(project: Project, name: str) -> Path:
    return project.root / "versions" / name


def index_rows(project: Project) -> list[tuple[str, str, str]]:
    # A connection's own ``with`` only commits; ``closing`` closes it (3.13 warns otherwise).
    with closing(sqlite3.connect(project.tree / "index.sqlite")) as db:
        return list(db.execute("SELECT category, key, target FROM changes ORDER BY seq"))


def history(project: Project) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = project.json("history")["runs"]
    return runs


def test_show_lists_subsystems_and_framework_version(vproject: Project) -> None:
    """``versions.show --json`` maps each lower-case subsystem to its version."""
    out = vproject.json("versions.show")

    assert out["versions"] == {"agents": "009", "cli": "0.7.5", "memory": "003"}
    assert out["framework_version"] == "0.7.5"


def test_bump_keeps_width_and_backs_up_under_the_file_name(vproject: Project) -> None:
    """``009`` -> ``010``; the backup is ``AGENTS_VERSION_backup_<ts>`` keyed ``agents``."""
    out = vproject.json("versions.bump", "agents")

    assert vfile(vproject, "AGENTS_VERSION").read_text() == "010\n"
    (change,) = out["changes"]
    assert (change["category"], change["key"], change["action"]) == (
        "versions", "agents", "update")
    backup = Path(change["backup"])
    assert backup.parent == vproject.tree / "versions"
    assert re.fullmatch(f"AGENTS_VERSION_backup_{STAMP}", backup.name)
    assert backup.read_text() == "009\n"
    assert index_rows(vproject) == [
        ("versions", "agents", str(vfile(vproject, "AGENTS_VERSION")))]
    assert [r["kind"] for r in history(vproject)] == ["bump"]


@pytest.mark.parametrize("data", [
    pytest.param(b"009", id="no-newline"),
    pytest.param(b"009\r\n", id="crlf"),
    pytest.param(b"  009 \r\n\r\n", id="spaces-crlf"),
])
def test_bump_keeps_the_file_format(project: Project, data: bytes) -> None:
    """Only the version's bytes change: newline or none, CRLF and spacing stay."""
    project.write({"versions/MEMORY_VERSION": data})

    project.ok("versions.bump", "memory")

    assert vfile(project, "MEMORY_VERSION").read_bytes() == data.replace(b"009", b"010")


def test_bump_keeps_the_mode(vproject: Project) -> None:
    """A version file's mode survives the atomic rewrite."""
    vfile(vproject, "MEMORY_VERSION").chmod(0o640)

    vproject.ok("versions.bump", "memory", "--to", "004")

    assert stat.S_IMODE(vfile(vproject, "MEMORY_VERSION").stat().st_mode) == 0o640


def test_bump_to_pep440(vproject: Project) -> None:
    """A PEP 440 version moves to its next patch, or to ``--to``."""
    vproject.ok("versions.bump", "cli")
    vproject.ok("versions.bump", "CLI", "--to", "0.8.0")

    assert vfile(vproject, "CLI_VERSION").read_text() == "0.8.0\n"
    assert len(history(vproject)) == 2


def test_lower_to_exits_2_unless_allowed(vproject: Project) -> None:
    """A downgrade is bad input (exit 2, nothing written) unless --allow-downgrade."""
    before = vproject.snapshot()

    done = vproject.invoke("versions.bump", "memory", "--to", "002")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "MEMORY_VERSION", "--allow-downgrade")
    assert vproject.snapshot() == before
    vproject.ok("versions.bump", "memory", "--to", "002", "--allow-downgrade")
    assert vfile(vproject, "MEMORY_VERSION").read_text() == "002\n"


def test_bump_to_the_same_version_is_a_no_op(vproject: Project) -> None:
    """Setting the current version writes nothing and records no run."""
    before = vproject.snapshot()

    out = vproject.json("versions.bump", "memory", "--to", "3")

    assert out == {"schema_version": 1, "run": None, "changes": [], "recovered": []}
    assert vproject.snapshot() == before


@pytest.mark.parametrize(("args", "needle"), [
    pytest.param(("versions.bump", "ghost"), "GHOST_VERSION", id="unknown-subsystem"),
    pytest.param(("versions.bump", "memory", "--to", "banana"), "banana", id="bad-to"),
    pytest.param(("versions.bulk", "--set", "memory"), "NAME=VERSION", id="bad-set"),
    pytest.param(("versions.bulk",), "--set", id="empty-bulk"),
])
def test_bad_input_exits_2_and_writes_nothing(vproject: Project, args: tuple[str, ...],
                                              needle: str) -> None:
    """Unknown subsystems, unparsable versions and malformed --set values exit 2."""
    before = vproject.snapshot()

    done = vproject.invoke(*args)

    assert done.returncode == 2
    assert_one_error_line(done.stderr, needle)
    assert vproject.snapshot() == before


def test_garbage_version_file_exits_2_naming_it(vproject: Project) -> None:
    """A version file that holds no version is named in the error, for every reader."""
    vproject.write({"versions/HEALTH_VERSION": "not a version\n"})

    for task in ("versions.show", "versions.check"):
        done = vproject.invoke(task)
        assert done.returncode == 2, task
        assert_one_error_line(done.stderr, str(vfile(vproject, "HEALTH_VERSION")))


@pytest.mark.parametrize("name", [
    pytest.param("../x", id="dotdot-slash"), pytest.param("a/b", id="slash"),
    pytest.param("..", id="dotdot"), pytest.param("-rf", id="dash"),
    pytest.param("", id="empty"),
])
def test_hostile_subsystem_names_exit_2_and_write_nothing(vproject: Project, name: str) -> None:
    """Hostile names are refused by bump, bulk and rollback.versions before anything is
    written (``--subsystem=`` form, since Invoke would read a bare ``-rf`` as its own flags)."""
    vproject.ok("versions.bump", "memory")
    before = vproject.snapshot()

    for args in (("versions.bump", f"--subsystem={name}"),
                 ("versions.bump", f"--subsystem={name}", "--create", "--to", "1"),
                 ("versions.bulk", "--set", "memory=005", f"--set={name}=1"),
                 ("rollback.versions", f"--subsystem={name}")):
        done = vproject.invoke(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert_one_error_line(done.stderr, "subsystem")
    assert vproject.snapshot() == before


def test_bulk_with_one_bad_item_writes_nothing(vproject: Project) -> None:
    """All or nothing: one bad item leaves every file, the tree and the index untouched."""
    before = vproject.snapshot()

    done = vproject.invoke("versions.bulk", "--set", "memory=004", "--set", "agents=010",
                           "--set", "cli=banana")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "CLI_VERSION", "nothing was written")
    assert vproject.snapshot() == before
    assert not vproject.state.exists()


def test_bulk_with_one_bad_item_adds_no_index_row(vproject: Project) -> None:
    """With an index already there, a refused bulk adds no run and no change row."""
    vproject.ok("versions.bump", "memory")
    rows = index_rows(vproject)
    before = vproject.snapshot()

    done = vproject.invoke("versions.bulk", "--set", "memory=005", "--set", "agents=001")

    assert done.returncode == 2
    assert vproject.snapshot() == before
    assert index_rows(vproject) == rows


def test_bulk_is_one_run_with_distinct_backups(vproject: Project) -> None:
    """Several items in the same second: one run, one backup each, each named by its file."""
    out = vproject.json("versions.bulk", "--set", "memory=004", "--set", "agents=010",
                        "--set", "cli=0.7.6")

    assert {Path(c["target"]).name: c["action"] for c in out["changes"]} == {
        "MEMORY_VERSION": "update", "AGENTS_VERSION": "update", "CLI_VERSION": "update"}
    backups = [Path(c["backup"]) for c in out["changes"]]
    assert len({b.name for b in backups}) == 3
    for backup in backups:
        name = backup.name.split("_backup_")[0]
        assert backup.read_text() == VERSIONS[name]
    (run,) = history(vproject)
    assert (run["id"], run["kind"], run["changed"]) == (out["run"], "bump", 3)


def test_same_second_bumps_get_counter_names(vproject: Project,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Three bumps of one file in the same second keep three backups (``_01``, ``_02``)."""
    from deploy import versions
    from deploy.config import load
    from deploy.store import Store, apply, open_session

    cfg = load(vproject.config_path)
    when = datetime(2026, 11, 27, 9, 30, 0)
    for _ in range(3):
        with open_session(Store(cfg.state_dir), command="test", actor="test") as sess:
            sess.clock = lambda: when
            apply(sess, versions.plan_bump(cfg.versions_dir, "memory"), kind="bump")

    names = sorted(p.name for p in (vproject.tree / "versions").iterdir())
    assert names == ["MEMORY_VERSION_backup_20261127_093000",
                     "MEMORY_VERSION_backup_20261127_093000_01",
                     "MEMORY_VERSION_backup_20261127_093000_02"]
    assert [(vproject.tree / "versions" / n).read_text() for n in names] == [
        "003\n", "004\n", "005\n"]


def test_rollback_versions_steps_back(vproject: Project) -> None:
    """Each rollback.versions undoes the next older bump, down to the original bytes."""
    original = vfile(vproject, "MEMORY_VERSION").read_bytes()
    vproject.ok("versions.bump", "memory")
    vproject.ok("versions.bump", "memory")
    assert vfile(vproject, "MEMORY_VERSION").read_text() == "005\n"

    vproject.ok("rollback.versions")
    assert vfile(vproject, "MEMORY_VERSION").read_text() == "004\n"
    vproject.ok("rollback.versions")
    done = vproject.ok("rollback.versions")

    assert vfile(vproject, "MEMORY_VERSION").read_bytes() == original
    assert "nothing to roll back" in done.stdout
    assert [r["kind"] for r in history(vproject)] == ["rollback", "rollback", "bump", "bump"]


def test_rollback_versions_after_bulk_restores_all(vproject: Project) -> None:
    """One rollback undoes a whole bulk: every file is byte-identical to before."""
    folder = vproject.root / "versions"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    vproject.ok("versions.bulk", "--set", "memory=004", "--set", "agents=010",
                "--set", "cli=0.7.6")

    out = vproject.json("rollback.versions")

    assert len(out["changes"]) == 3
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_rollback_versions_narrowed_by_subsystem(vproject: Project) -> None:
    """``--subsystem`` undoes only that subsystem's change of the run."""
    vproject.ok("versions.bulk", "--set", "memory=004", "--set", "agents=010")

    vproject.ok("rollback.versions", "--subsystem", "MEMORY")

    assert vfile(vproject, "MEMORY_VERSION").read_text() == "003\n"
    assert vfile(vproject, "AGENTS_VERSION").read_text() == "010\n"


def test_rollback_removes_a_created_version_file(vproject: Project) -> None:
    """A version file created with --create is recorded absent, mode 0644, and rolled away."""
    vproject.ok("versions.bump", "cache", "--create", "--to", "001")
    created = vfile(vproject, "CACHE_VERSION")
    assert created.read_text() == "001\n"
    assert stat.S_IMODE(created.stat().st_mode) == 0o644

    vproject.ok("rollback.versions")

    assert not created.exists()


@pytest.mark.parametrize("args", [
    pytest.param(("versions.bump", "memory"), id="bump"),
    pytest.param(("versions.bump", "cache", "--create", "--to", "1"), id="create"),
    pytest.param(("versions.bulk", "--set", "memory=004", "--set", "agents=010"), id="bulk"),
    pytest.param(("rollback.versions",), id="rollback"),
])
def test_dry_run_leaves_the_tree_byte_identical(vproject: Project,
                                                args: tuple[str, ...]) -> None:
    """--dry-run prints a unified diff and writes nothing at all."""
    vproject.ok("versions.bump", "agents")
    before = vproject.snapshot()

    done = vproject.ok(*args, "--dry-run")
    as_json = vproject.json(*args, "--dry-run")

    assert vproject.snapshot() == before
    assert "would " in done.stdout
    assert as_json["run"] is None and as_json["changes"]


def test_dry_run_shows_the_diff(vproject: Project) -> None:
    """The dry run's diff names the file and shows old and new versions."""
    done = vproject.ok("versions.bump", "memory", "--dry-run")

    assert "-003" in done.stdout and "+004" in done.stdout
    assert "MEMORY_VERSION" in done.stdout
    assert not vproject.state.exists()


def configure_requires(project: Project, requires: dict[str, str]) -> None:
    """Add a [tool.deploy.versions.requires] table to the base config."""
    lines = "\n".join(f'{k} = "{v}"' for k, v in requires.items())
    project.configure(f"\n[tool.deploy.versions.requires]\n{lines}\n")


def test_check_passes_when_met(vproject: Project) -> None:
    """Met requirements exit 0 with exact and compatible statuses; newer is not outdated."""
    vproject.write({"versions/FRAMEWORK_VERSION": "0.7.5-002\n"})
    configure_requires(vproject, {"memory": ">=002", "agents": ">=9",
                                  "framework": ">=0.7.5", "cli": "==0.7.5"})

    out = vproject.json("versions.check")

    assert out["ok"] is True
    assert {r["subsystem"]: r["status"] for r in out["requirements"]} == {
        "memory": "compatible", "agents": "exact", "framework": "compatible", "cli": "exact"}


def test_check_exits_3_when_unmet(vproject: Project) -> None:
    """An outdated or missing subsystem exits 3, naming each file and its status."""
    configure_requires(vproject, {"memory": ">=4", "ghost": ">=1", "agents": ">=2"})
    before = vproject.snapshot()

    done = vproject.invoke("versions.check")
    as_json = vproject.invoke("versions.check", "--json")

    assert done.returncode == 3
    assert_one_error_line(done.stderr, "MEMORY_VERSION", "outdated", "GHOST_VERSION",
                          "missing")
    assert "agents" not in done.stderr
    assert as_json.returncode == 3
    assert '"ok": false' in as_json.stdout
    assert vproject.snapshot() == before


def test_check_bad_specifier_exits_2(vproject: Project) -> None:
    """A requires entry that is not a specifier is a config error naming the key."""
    configure_requires(vproject, {"memory": ">=banana"})

    done = vproject.invoke("versions.check")

    assert done.returncode == 2
    assert_one_error_line(done.stderr, "requires.memory")


def test_this_repository_meets_its_own_requirements() -> None:
    """The shipped version files satisfy the shipped pyproject's requires."""
    from deploy import versions
    from deploy.config import load

    repo = Path(__file__).resolve().parents[1]
    cfg = load(repo / "pyproject.toml")
    found = {k: f.version for k, f in versions.read_all(cfg.versions_dir).items()}

    results = versions.check(cfg.requires, found)

    assert results and all(r.met for r in results)
    assert {"memory", "agents", "ticketing", "documentation", "services", "cli",
            "integration", "health", "framework"} <= set(found)
    assert versions.framework_version(cfg.versions_dir) == "0.7.5"


def test_rollback_versions_to_a_named_backup(vproject: Project) -> None:
    """``--to BACKUP_ID`` restores that backup's bytes into its version file."""
    first = vproject.json("versions.bump", "memory")["changes"][0]
    vproject.ok("versions.bump", "memory")

    vproject.ok("rollback.versions", "--to", str(first["backup_id"]))

    assert vfile(vproject, "MEMORY_VERSION").read_text() == "003\n"


def test_hand_edit_blocks_rollback_unless_forced(vproject: Project) -> None:
    """A version file edited since the bump is drift: exit 3, unless --force backs it up."""
    vproject.ok("versions.bump", "memory")
    vproject.write({"versions/MEMORY_VERSION": "042\n"})
    before = vproject.snapshot()

    done = vproject.invoke("rollback.versions")
    assert done.returncode == 3
    assert_one_error_line(done.stderr, "MEMORY_VERSION", "--force")
    # The blocked rollback held the lock (its holder line changes); nothing else moved.
    after = vproject.snapshot()
    assert {k: v for k, v in after.items() if k != "state/backups/lock"} == {
        k: v for k, v in before.items() if k != "state/backups/lock"}
    out = vproject.json("rollback.versions", "--force")

    assert vfile(vproject, "MEMORY_VERSION").read_text() == "003\n"
    assert Path(out["changes"][0]["backup"]).read_text() == "042\n"
