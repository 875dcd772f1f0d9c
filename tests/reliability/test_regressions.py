"""One targeted test per bug the sweeps found, so each fix stays put on its own."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.reliability import faults, harness, ledger
from tests.reliability import invariants as inv


def test_failed_final_commit_restores_the_targets(tmp_path: Path) -> None:
    """When the last index commit fails, the run exits 1 with every target back as it was
    (it used to exit 1 with every target changed)."""
    prep = harness.prepare(harness.BY_NAME["deploy.scripts"], tmp_path)
    injector = faults.Injector("index.commit", 3, errno.EIO)

    with injector.active():
        out = harness.run_task(prep.root, "deploy.scripts")

    assert injector.fired and out.code == 1, out.stderr
    assert "restored" in out.stderr
    assert prep.files() == prep.before


def test_rollback_cut_short_then_retried_is_not_drift(tmp_path: Path) -> None:
    """A rollback whose final commit failed after restoring can simply be run again."""
    prep = harness.prepare(harness.BY_NAME["rollback.scripts"], tmp_path)
    injector = faults.Injector("index.commit", 3, errno.EIO, persistent=True)
    with injector.active():
        harness.run_task(prep.root, "rollback.scripts")

    again = harness.run_task(prep.root, "rollback.scripts")

    assert again.ok, again.stderr
    assert prep.files() == prep.new


def test_hot_journal_does_not_wedge_read_only_opens(tmp_path: Path) -> None:
    """A journal left by a commit cut short is rolled back instead of failing every
    ``history`` and every plan with "attempt to write a readonly database"."""
    from deploy.store.index import Index

    path = tmp_path / "index.sqlite"
    Index(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA cache_size=1")
        db.execute("BEGIN")
        db.execute("CREATE TABLE big (x)")
        db.executemany("INSERT INTO big VALUES (?)", [(b"x" * 4000,) for _ in range(200)])
        # Freeze the journal as a killed process would leave it: copy it while hot.
        hot = (tmp_path / "index.sqlite-journal").read_bytes()
        frozen = path.read_bytes()
        db.execute("ROLLBACK")
    path.write_bytes(frozen)
    (tmp_path / "index.sqlite-journal").write_bytes(hot)

    with closing(Index(path, readonly=True)) as index:
        assert index.runs.newest() == []
    assert not (tmp_path / "index.sqlite-journal").exists()


def test_killed_chmod_only_change_rolls_back(tmp_path: Path) -> None:
    """A run cut short after changing only a mode: rolling it back restores the mode."""
    prep = harness.prepare(harness.BY_NAME["deploy.scripts"], tmp_path)
    beta = prep.root / "target" / "bin" / "beta"
    assert prep.before["target/bin/beta"].mode == 0o700
    injector = faults.Injector("index.commit", 3, errno.EIO, persistent=True)
    with injector.active():
        harness.run_task(prep.root, "deploy.scripts")
    os.chmod(beta, 0o755)  # as if the restore never ran: the kill came first

    out = harness.run_task(prep.root, "rollback.scripts")

    assert out.ok, out.stderr
    assert inv.file_states(prep.root)["target/bin/beta"].mode == 0o700


def test_stale_temp_files_are_removed_by_the_next_run(tmp_path: Path) -> None:
    """A temp file whose writer is gone is removed by the next run that writes its folder."""
    prep = harness.prepare(harness.BY_NAME["deploy.scripts"], tmp_path)
    stale = prep.root / "target" / "bin" / ".gamma.deploy-tmp-999999999-abcd1234"
    shutil.copy(prep.root / "bin" / "gamma", stale)

    out = harness.run_task(prep.root, "deploy.scripts")

    assert out.ok, out.stderr
    assert inv.temp_files(prep.root) == []


def test_index_being_created_reads_as_no_index(tmp_path: Path) -> None:
    """An index file another first run has created but not filled yet reads as "no index"
    (one of eight concurrent first deploys used to fail with "no such table: runs")."""
    from deploy.store import Store

    store = Store(tmp_path / "state")
    store.tree.mkdir(parents=True)
    sqlite3.connect(store.index_path).close()

    with store.reading() as index:
        assert index is None


def test_index_killed_while_created_reads_as_no_index(tmp_path: Path) -> None:
    """A first run killed after the schema's ``runs`` table but before ``changes`` (its
    statements commit one by one): the read-only opens of the next runs read "no index"
    instead of failing with "no such table: changes", and the next writing run completes
    the schema (found by the SIGKILL sweep of a first-ever backups.migrate)."""
    from deploy.store.index.schema import SCHEMA

    root = tmp_path / "p"
    harness.base_project(root)
    tree = root / "state" / "backups"
    tree.mkdir(parents=True, mode=0o700)
    db = sqlite3.connect(tree / "index.sqlite")
    db.executescript(";".join(SCHEMA.split(";")[:2]) + ";")  # meta and runs only
    db.close()
    (tree / "index.sqlite").chmod(0o600)

    listed = harness.cli(root, "backups.list")
    dry = harness.cli(root, "deploy.scripts", {"dry_run": True})
    deployed = harness.cli(root, "deploy.scripts")

    assert listed.ok and "no backups yet" in listed.stdout, listed.stderr
    assert dry.ok and "would create" in dry.stdout, dry.stderr
    assert deployed.ok, deployed.stderr
    assert harness.cli(root, "backups.verify").ok


@pytest.mark.parametrize("task", ["backups.verify", "rollback.scripts", "rollback.release"])
def test_a_lost_index_is_named_not_taken_for_an_empty_tree(tmp_path: Path, task: str) -> None:
    """With the index gone and backups in the tree, verify and the rollbacks exit 1 naming
    the missing index and the files it cannot account for; nothing is written."""
    root = tmp_path / "p"
    harness.base_project(root)
    harness.must(harness.cli(root, "deploy.scripts"), "first deploy")
    harness.write_files(root, {"bin/alpha": harness.script("alpha 2")})
    harness.must(harness.cli(root, "deploy.scripts"), "second deploy")
    tree = root / "state" / "backups"
    (tree / "index.sqlite").unlink()
    before = inv.file_states(root, exclude=())

    out = harness.cli(root, task)

    found = inv.check_clear_error(out.code, out.stderr, names=(str(tree / "index.sqlite"),),
                                  causes=("index is missing",))
    if out.code != 1 or "alpha_backup_" not in out.stderr:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {out.code}: {out.stderr}"))
    if inv.file_states(root, exclude=()) != before:
        found.append(inv.Violation(inv.CLEAN, "something was written"))
    ledger.record("bad input: index lost, backups kept", found)
    assert found == []
