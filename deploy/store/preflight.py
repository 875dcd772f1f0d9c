"""Preflight: every folder, permission and the free space a run needs, checked before the
first write, so a run that cannot finish never starts."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.errors import WriteFailed
from deploy.plan import Plan
from deploy.store.tree import Store, oserror


def preflight(store: Store, plan: Plan) -> None:
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
                raise WriteFailed(f"{probe}: folder is not writable: {why_not_writable(probe)}")
            writable.add(probe)
        if change.new is not None:
            add(parent, change.new_size)
        if change.old.exists:
            add(store.folder(change.category, change.key), change.old.size)
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
    tree = store.tree
    if not os.access(tree, os.W_OK | os.X_OK):
        raise WriteFailed(f"{tree}: backup tree is not writable: {why_not_writable(tree)}")


def why_not_writable(folder: Path) -> str:
    """The real cause: ``os.access`` says no alike for a read-only mount and for modes."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"
