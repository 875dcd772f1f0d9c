"""The store's own promises, in process: races the CLI cannot time."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from deploy import scripts
from deploy.config import load
from deploy.errors import WriteFailed
from deploy.store import Store
from tests.conftest import Project


def test_file_appearing_after_plan_is_never_overwritten(project: Project) -> None:
    """A target planned as absent that appears before the write is left alone (no backup
    exists for it), the run fails and restores what it changed."""
    project.write({"bin/a": "a\n", "bin/b": "b\n"})
    cfg = load(project.config_path)
    plan = scripts.plan(cfg.scripts_source, cfg.scripts_target)
    intruder = cfg.scripts_target / "b"

    with Store(cfg.state_dir).session(command="t", actor="t") as sess:
        def appear(i: int, _change: object) -> None:
            if i == 1:
                intruder.write_text("someone else's\n")

        sess.before_target = appear
        with pytest.raises(WriteFailed) as caught:
            sess.apply(plan, kind="deploy")

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

    with Store(cfg.state_dir).session(command="t", actor="t") as sess, \
            pytest.raises(WriteFailed) as caught:
        sess.apply(plan, kind="deploy")

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
    with pytest.raises(WriteFailed) as caught, store.session(command="t", actor="t"):
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
    from deploy.index import Index

    with closing(Index(project.root / "index.sqlite")) as index:
        with pytest.raises(RuntimeError, match="first"), index.transaction():
            index.db.execute("ROLLBACK")
            raise RuntimeError("first")

        with index.transaction():
            index.add_run("deploy", "t", "t", 1, "now", ["scripts"])
        assert len(index.runs()) == 1


def test_generation_moves_with_every_start_end_and_change(project: Project) -> None:
    """A plan made before the lock is kept only while the index's generation stands
    still: a run starting, a change recorded and a run ending (with nothing started
    since) must each move it. It is read from indexes, not by counting every run."""
    from deploy.index import Index

    with closing(Index(project.root / "index.sqlite")) as index:
        seen = [index.generation()]
        with index.transaction():
            run = index.add_run("deploy", "t", "t", 1, "now", ["scripts"])
        seen.append(index.generation())
        with index.transaction():
            index.add_change(run=run, category="scripts", key="a", target="/t/a",
                             action="create", created="now", created_ts=0.0, state="applied")
        seen.append(index.generation())
        with index.transaction():
            index.finish_run(run, "done", "later")
        seen.append(index.generation())

        assert len(set(seen)) == len(seen), seen
        plan = index.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM runs WHERE state = 'running'").fetchall()
        assert any("runs_state" in str(step) for step in plan), plan
