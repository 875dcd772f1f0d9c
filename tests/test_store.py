"""The store's own promises, in process: races the CLI cannot time."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from deploy import scripts
from deploy.config import load
from deploy.errors import WriteFailed
from deploy.store import Store, apply, open_session
from tests.conftest import Project


def test_file_appearing_after_plan_is_never_overwritten(project: Project) -> None:
    """A target planned as absent that appears before the write is left alone (no backup
    exists for it), the run fails and restores what it changed."""
    project.write({"bin/a": "a\n", "bin/b": "b\n"})
    cfg = load(project.config_path)
    plan = scripts.plan(cfg.scripts_source, cfg.scripts_target)
    intruder = cfg.scripts_target / "b"

    with open_session(Store(cfg.state_dir), command="t", actor="t") as sess:
        def appear(i: int, _change: object) -> None:
            if i == 1:
                intruder.write_text("someone else's\n")

        sess.before_target = appear
        with pytest.raises(WriteFailed) as caught:
            apply(sess, plan, kind="deploy")

    assert "appeared while deploying" in str(caught.value)
    assert intruder.read_text() == "someone else's\n"
    assert not (cfg.scripts_target / "a").exists()
    assert not [p for p in Path(cfg.scripts_target).iterdir() if ".deploy-tmp-" in p.name]


def test_target_edited_between_plan_and_backup_fails_cleanly(project: Project) -> None:
    """If a target's bytes change after planning, the backup hash catches it: nothing is
    written and the edit stays."""
    project.write({"bin/a": "new\n", "target/bin/a": "old\n"})
    cfg = load(project.config_path)
    plan = scripts.plan(cfg.scripts_source, cfg.scripts_target)
    (cfg.scripts_target / "a").write_text("edited after plan\n")

    with open_session(Store(cfg.state_dir), command="t", actor="t") as sess, \
            pytest.raises(WriteFailed) as caught:
        apply(sess, plan, kind="deploy")

    assert "changed while being backed up" in str(caught.value)
    assert (cfg.scripts_target / "a").read_text() == "edited after plan\n"
    assert list((cfg.state_dir / "backups/scripts").iterdir()) == []


def test_failing_lock_holder_write_is_one_clear_error(project: Project,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO writing the lock's holder line names the lock file and releases the lock
    (found by the strace sweep on pwrite64: the error named no path)."""
    import errno
    import fcntl
    import os

    cfg = load(project.config_path)
    store = Store(cfg.state_dir)

    def broken(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "pwrite", broken)
    with pytest.raises(WriteFailed) as caught, open_session(store, command="t", actor="t"):
        pass
    monkeypatch.undo()

    assert str(store.lock_path) in str(caught.value)
    fd = os.open(store.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_transaction_keeps_the_first_error_when_sqlite_rolled_back(project: Project) -> None:
    """When SQLite already rolled back (an I/O error mid-statement), leaving the
    transaction raises the original error, not 'no transaction is active' (found by the
    strace sweep: it surfaced as a traceback)."""
    from deploy.store.index import Index

    with closing(Index(project.root / "index.sqlite")) as index:
        with pytest.raises(RuntimeError, match="first"), index.transaction():
            index.db.execute("ROLLBACK")
            raise RuntimeError("first")

        with index.transaction():
            index.runs.add("deploy", "t", "t", 1, "now", ["scripts"])
        assert len(index.runs.newest()) == 1


def test_generation_moves_with_every_start_end_and_change(project: Project) -> None:
    """A plan made before the lock is kept only while the index's generation stands
    still: a run starting, a change recorded and a run ending (with nothing started
    since) must each move it. It is read from indexes, not by counting every run."""
    from deploy.store.index import Index

    with closing(Index(project.root / "index.sqlite")) as index:
        seen = [index.generation()]
        with index.transaction():
            run = index.runs.add("deploy", "t", "t", 1, "now", ["scripts"])
        seen.append(index.generation())
        with index.transaction():
            index.changes.add(run=run, category="scripts", key="a", target="/t/a",
                              action="create", backup=None, old_sha256=None, old_size=None,
                              old_mode=None, created="now", created_ts=0.0, state="applied")
        seen.append(index.generation())
        with index.transaction():
            index.runs.finish(run, "done", "later")
        seen.append(index.generation())
        plan = index.execute("EXPLAIN QUERY PLAN SELECT count(*) FROM runs "
                             "WHERE state = 'running'").fetchall()

    assert len(set(seen)) == len(seen), seen
    assert any("runs_state" in str(step) for step in plan), plan


def test_a_backup_deleted_by_hand_never_lends_its_name(project: Project) -> None:
    """With the clock frozen, a backup removed by hand does not let the next backup take
    its name: every index row names its own file, and pruning the older row keeps the
    newer backup."""
    from datetime import datetime

    from deploy import retention
    from deploy.config import BackupSettings
    from deploy.store import delete_backup

    cfg = load(project.config_path)
    frozen = datetime(2025, 7, 14, 17, 1, 56)

    def deploy(version: int) -> None:
        project.write({"bin/a": f"v{version}\n"})
        with open_session(Store(cfg.state_dir), command="t", actor="t") as sess:
            sess.clock = lambda: frozen
            apply(sess, scripts.plan(cfg.scripts_source, cfg.scripts_target), kind="deploy")

    for version in (1, 2):
        deploy(version)
    first = cfg.state_dir / "backups" / "scripts" / "a_backup_20250714_170156"
    first.unlink()
    deploy(3)

    with Store(cfg.state_dir).reading() as index:
        assert index is not None
        rows = index.changes.backups()
        found = retention.verdicts(index.changes.for_retention(), index.runs.newest(),
                                   BackupSettings(max_backups_per_type=1))
    names = [row.backup for row in rows]
    assert len(names) == len(set(names)) == 2
    gone = retention.doomed(found)
    assert gone == [rows[1].seq]
    with open_session(Store(cfg.state_dir), command="t", actor="t") as sess:
        for row in rows:
            if row.seq in gone:
                delete_backup(sess, row)
    newest = cfg.state_dir / "backups" / rows[0].backup
    assert newest.read_text() == "v2\n"
