"""What a lock holder does with the tree: recover killed runs, apply plans, migrate, prune."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from deploy import fsio
from deploy.errors import DeployError, WriteFailed
from deploy.index import ChangeRow, Index
from deploy.names import backup_stem, name_key, unique_name
from deploy.plan import Change, Plan
from deploy.store.phases import WritePhases
from deploy.store.tree import Applied, RunResult, Store, now_iso, oserror, sync_folders


class Session(WritePhases):
    """What a lock holder may do: recover, apply plans, prune."""

    def __init__(self, store: Store, index: Index, *, command: str, actor: str) -> None:
        self.store = store
        self.index = index
        self.command = command
        self.actor = actor
        self.recovered: tuple[int, ...] = ()
        # The clock that names backups (local time); tests freeze it to force collisions.
        self.clock: Callable[[], datetime] = datetime.now
        # Test hook for the fault-injection suite: called before each target write.
        self.before_target: Callable[[int, Change], None] | None = None

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> tuple[int, ...]:
        """Record runs a kill left as ``running`` as ``interrupted`` and clean their debris."""
        found = []
        for run in self.index.running_runs():
            changes = self.index.changes_of_run(run.id)
            for row in changes:
                target = Path(row.target)
                fsio.remove_temps(target.parent, target.name)
                if row.backup:
                    backup = self.store.tree / row.backup
                    fsio.remove_temps(backup.parent, backup.name)
                    if row.state == "planned":
                        # Never confirmed: the target was not touched, the copy is spare.
                        try:
                            os.unlink(backup)
                        except FileNotFoundError:
                            pass
            with self.index.transaction():
                self.index.set_change_state(run.id, "planned", "void")
                self._settle(changes)
                self.index.finish_run(run.id, "interrupted", now_iso())
            found.append(run.id)
        self.recovered = tuple(found)
        return self.recovered

    def _settle(self, changes: list[ChangeRow]) -> None:
        """Mark a cut-short run's ``backed_up`` changes whose target still holds the old bytes
        and mode as ``reverted``, so that ``backed_up`` means "the target holds the new bytes".

        Without this, a change the run never reached read as the last write to its target,
        and the next deploy called the untouched file "edited since run N wrote it" (found
        by the reliability sweep).
        """
        for row in changes:
            if row.state != "backed_up":
                continue
            try:
                current = fsio.read_state(Path(row.target))
            except OSError:
                continue
            holds_old = current.sha256 == row.old_sha256 and current.mode == row.old_mode \
                if row.old_sha256 is not None else not current.exists
            holds_new = current.sha256 == row.new_sha256 and current.mode == row.new_mode \
                if row.new_sha256 is not None else not current.exists
            if holds_old and not holds_new:
                self.index.set_seq_state(row.seq, "reverted")

    # -- applying ---------------------------------------------------------------------------
    def preflight(self, plan: Plan) -> None:
        """Check folders and free space before the first write; raise naming what is wrong.

        Each folder is checked once, however many files of the plan it holds."""
        need: dict[int, tuple[Path, int]] = {}
        nearest: dict[Path, tuple[Path, int]] = {}  # folder -> (nearest existing, its device)

        def existing(folder: Path) -> tuple[Path, int]:
            if folder not in nearest:
                probe = folder
                while not probe.exists() and probe.parent != probe:
                    probe = probe.parent
                try:
                    nearest[folder] = (probe, os.stat(probe).st_dev)
                except OSError as err:
                    raise oserror("checking", probe, err) from err
            return nearest[folder]

        def add(folder: Path, size: int) -> None:
            probe, dev = existing(folder)
            have = need.get(dev, (probe, 0))
            need[dev] = (have[0], have[1] + size + 4096)

        writable: set[Path] = set()
        for change in plan.changes:
            parent = change.target.parent
            probe, _dev = existing(parent)
            if probe not in writable:
                if not probe.is_dir():
                    raise WriteFailed(f"{probe}: cannot create {change.target}: not a folder")
                if not os.access(probe, os.W_OK | os.X_OK):
                    raise WriteFailed(f"{probe}: folder is not writable: permission denied")
                writable.add(probe)
            if change.new is not None:
                add(parent, change.new_size)
            if change.old.exists:
                add(self.store.folder(change.category, change.key), change.old.size)
        for probe, size in need.values():
            try:
                st = os.statvfs(probe)
            except OSError as err:
                raise oserror("checking free space on", probe, err) from err
            free = st.f_bavail * st.f_frsize
            if free < size:
                raise WriteFailed(
                    f"{probe}: not enough free space: need {size} bytes, {free} available")
            if st.f_favail < len(plan.changes) * 2 and st.f_files:
                raise WriteFailed(f"{probe}: no free inodes: cannot create files")
        tree = self.store.tree
        if not os.access(tree, os.W_OK | os.X_OK):
            raise WriteFailed(f"{tree}: backup tree is not writable: permission denied")

    def _backup_names(self, plan: Plan, when: datetime) -> list[Path | None]:
        reserved: set[Path] = set()
        names: list[Path | None] = []
        checked: set[Path] = set()
        for change in plan.changes:
            if not change.old.exists:
                names.append(None)
                continue
            folder = self.store.folder(change.category, change.key)
            if folder not in checked:
                if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                    raise WriteFailed(f"{folder}: backup folder is not a real folder; refusing")
                checked.add(folder)
            stem, suffix = backup_stem(
                change.category, name_key(change.category, change.key, change.target.name), when)

            def taken(name: str, folder: Path = folder) -> bool:
                return folder / name in reserved or os.path.lexists(folder / name)

            name = unique_name(stem, suffix, taken)
            reserved.add(folder / name)
            names.append(folder / name)
        return names

    def apply(self, plan: Plan, *, kind: str, undoes: int | None = None,
              on_done: Callable[[Index, int, list[int]], None] | None = None,
              record_empty: bool = False) -> RunResult:
        """Back up and write every change of ``plan`` as one run; all or nothing.

        A plan with no change records no run, unless ``record_empty`` (a rollback that only
        marks an interrupted run's never-written changes as undone).
        """
        if not plan.changes and not record_empty:
            return RunResult(None, (), self.recovered)
        self.preflight(plan)
        # Debris of earlier runs that could not clean up after themselves goes first.
        for folder in dict.fromkeys(c.target.parent for c in plan.changes):
            fsio.remove_stale_temps(folder)
        when = self.clock()
        backups = self._backup_names(plan, when)
        started = now_iso()
        tree = self.store.tree
        with self.index.transaction():
            run = self.index.add_run(kind, self.actor, self.command, os.getpid(), started,
                                     {c.category for c in plan.changes} or plan.categories,
                                     undoes)
            seqs = []
            for change, backup in zip(plan.changes, backups, strict=True):
                seqs.append(self.index.add_change(
                    run=run, category=change.category, key=change.key,
                    target=str(change.target), action=change.action,
                    backup=str(backup.relative_to(tree)) if backup else None,
                    old_sha256=change.old.sha256, old_size=change.old.size if change.old.exists
                    else None, old_mode=change.old.mode, new_sha256=change.new_sha256,
                    new_size=change.new_size if change.new is not None else None,
                    new_mode=change.mode if change.new is not None else None,
                    created=started, created_ts=time.time(), state="planned",
                    reverts=change.reverts))
        self._write_backups(run, plan, backups)
        with self.index.transaction():
            self.index.set_change_state(run, "planned", "backed_up")
        self._write_targets(run, plan, backups)
        try:
            self._commit_applied(run, plan, seqs, on_done)
        except BaseException as err:
            # The targets are written but the index could not say so: a run is all or
            # nothing, so put the old bytes back (found by the reliability sweep: a failed
            # final commit used to exit 1 with every target changed).
            self._undo_targets(run, plan, backups, list(range(len(plan.changes))), err)
            raise
        return RunResult(run, tuple(
            Applied(c.category, c.key, c.target, c.action, b, s)
            for c, b, s in zip(plan.changes, backups, seqs, strict=True)), self.recovered)

    def _commit_applied(self, run: int, plan: Plan, seqs: list[int],
                        on_done: Callable[[Index, int, list[int]], None] | None) -> None:
        with self.index.transaction():
            self.index.set_change_state(run, "backed_up", "applied")
            for change, seq in zip(plan.changes, seqs, strict=True):
                if change.render is not None and change.new_sha256 is not None:
                    # The render's own hash: after a merge the target holds more than the
                    # render, and the stored output (the next merge base) must verify.
                    self.index.add_render(seq, change.category, change.key,
                                          change.render.template_sha256,
                                          fsio.sha256_bytes(change.render.output),
                                          change.render.output,
                                          change.render.context_sha256)
                    if change.render.code is not None:
                        self.index.put_template_code(*change.render.code)
            if on_done is not None:
                on_done(self.index, run, seqs)
            self.index.finish_run(run, "done", now_iso())

    def _undo_targets(self, run: int, plan: Plan, backups: list[Path | None], done: list[int],
                      err: BaseException) -> None:
        """Restore the targets a failing run changed, record its end, and raise the error
        saying whether every target is back."""
        restored = self._restore(plan, backups, done)
        if restored:
            self._finish_quietly(run, "backed_up", "reverted", "failed")
        else:
            self._finish_quietly(run, None, None, "interrupted", settle=True)
        if isinstance(err, DeployError) and restored:
            raise type(err)(f"{err}; restored the {len(done)} target(s) already changed") \
                from err
        if isinstance(err, DeployError):
            raise type(err)(
                f"{err}; could not restore every target: run `invoke rollback.release "
                f"--run {run}`") from err

    def _restore(self, plan: Plan, backups: list[Path | None], done: list[int]) -> bool:
        ok = True
        for i in reversed(done):
            change, backup = plan.changes[i], backups[i]
            try:
                if backup is None:
                    fsio.unlink_durably(change.target)
                else:
                    assert change.old.mode is not None
                    fsio.atomic_write(change.target, backup, change.old.mode)
            except OSError:
                ok = False
        return ok

    def _finish_quietly(self, run: int, old: str | None, new: str | None, state: str, *,
                        settle: bool = False) -> None:
        """Record a run's end after a failure; a second error never hides the first."""
        try:
            with self.index.transaction():
                if old is not None and new is not None:
                    self.index.set_change_state(run, old, new)
                if settle:
                    self._settle(self.index.changes_of_run(run))
                self.index.finish_run(run, state, now_iso())
        except Exception:
            pass

    # -- migration --------------------------------------------------------------------------
    def import_files(self, items: list[tuple[str, str, Path, Path, datetime]]) -> RunResult:
        """Copy legacy backups (category, key, file, target, time) into the tree as one run.

        The same durable order as :meth:`apply`: rows first (planned), then the copies, then
        the commit that marks them ``imported``; a kill in between is cleaned by recovery.
        Files already imported (same target and bytes) are skipped, so it can run again.
        """
        tree = self.store.tree
        todo = []
        reserved: set[Path] = set()
        for category, key, path, target, when in items:
            state = fsio.read_state(path)
            if not state.exists or state.sha256 is None:
                continue
            if self.index.imported(str(target), state.sha256):
                continue
            folder = self.store.folder(category, key)
            stem, suffix = backup_stem(category, name_key(category, key, target.name), when)

            def taken(name: str, folder: Path = folder) -> bool:
                return folder / name in reserved or os.path.lexists(folder / name)

            dest = folder / unique_name(stem, suffix, taken)
            reserved.add(dest)
            todo.append((category, key, path, target, state, dest))
        if not todo:
            return RunResult(None, (), self.recovered)
        started = now_iso()
        with self.index.transaction():
            run = self.index.add_run("migrate", self.actor, self.command, os.getpid(), started,
                                     {t[0] for t in todo})
            seqs = [self.index.add_change(
                run=run, category=category, key=key, target=str(target), action="import",
                backup=str(dest.relative_to(tree)), old_sha256=state.sha256,
                old_size=state.size, old_mode=state.mode, created=started,
                created_ts=time.time(), state="planned")
                for category, key, _path, target, state, dest in todo]
        folders: set[Path] = set()
        try:
            for _category, _key, path, _target, state, dest in todo:
                try:
                    fsio.makedirs_durably(dest.parent)
                    tmp, sha, _ = fsio.write_temp(dest, path, state.mode or 0o644)
                    if sha != state.sha256:
                        os.unlink(tmp)
                        raise WriteFailed(f"{path}: changed while being copied; try again")
                    fsio.commit_temp(tmp, dest)
                except OSError as err:
                    raise oserror(f"copying {path} to", dest, err) from err
                folders.add(dest.parent)
            sync_folders(folders, "backup folder")
        except BaseException:
            self._abandon(run, [t[5] for t in todo])
            raise
        with self.index.transaction():
            self.index.set_change_state(run, "planned", "imported")
            self.index.finish_run(run, "done", now_iso())
        return RunResult(run, tuple(
            Applied(t[0], t[1], t[3], "import", t[5], seq) for t, seq in zip(todo, seqs,
                                                                            strict=True)),
            self.recovered)

    # -- pruning ----------------------------------------------------------------------------
    def delete_backup(self, row: ChangeRow) -> None:
        """Remove one backup file and mark it pruned (index first: never a dangling row)."""
        with self.index.transaction():
            self.index.mark_pruned(row.seq)
        path = self.store.backup_path(row)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise oserror("removing backup", path, err) from err


