"""Durable, atomic file writes that stream and hash as they go, and the reads they pair with.

One home for each concern; callers use the package (``from deploy import fsio``, then
``fsio.<name>``), never a submodule:

- ``read``: what a path holds (:class:`FileState`, :class:`Contents`), the regular-file
  open that never follows a final symlink, the small and chunked readers, and the sizes
  (``CHUNK``, ``LARGE``) everything above sizes its work by;
- ``large``: the large-file path, a copy hashed on a second thread with writeback as it
  goes (the ring constants, the ``posix_fadvise`` advice), and the write loop;
- ``temps``: temp-file names and their cleanup, including a dead writer's leftovers;
- ``durable``: the atomic durable write order (temp file in the same folder, fsync, mode,
  rename, fsync the folder), staged in batches or one file at a time.

Imports run one way: ``read`` <- ``large`` <- ``durable`` -> ``temps``.

The package object also keeps the promise the single module made. The fault sweep and
the tests patch names on it (``fsio.stage``, ``fsio.commit_temp``, ``fsio.CHUNK`` ...),
and in one module such a patch rebound the global that every function read, so
``atomic_write`` called a patched ``commit_temp`` and the readers used a patched
``CHUNK``. Setting an attribute on the package therefore also sets it in each submodule
that binds that name (see :class:`_Package`), and a patch reaches every call and read it
reached before.
"""

from __future__ import annotations

import sys
import types

from deploy.fsio import durable, large, read, temps
from deploy.fsio.durable import (
    Mismatch,
    Owner,
    Staged,
    Stream,
    atomic_write,
    commit_temp,
    create_from_temp,
    discard,
    fsync_dir,
    makedirs_durably,
    stage,
    sync,
    unlink_durably,
    write_temp,
)
from deploy.fsio.large import _FADVISE as _FADVISE
from deploy.fsio.large import KICK, RING, WINDOW, stream_into
from deploy.fsio.read import (
    ABSENT,
    CHUNK,
    LARGE,
    Contents,
    FileState,
    read_alongside,
    read_bytes,
    read_contents,
    read_state,
    sha256_bytes,
    state_of,
)
from deploy.fsio.read import _chunks as _chunks
from deploy.fsio.read import _read_small as _read_small
from deploy.fsio.temps import (
    TEMP_MARK,
    is_temp_name,
    remove_stale_temps,
    remove_temps,
    temp_path,
)

__all__ = [
    "ABSENT", "CHUNK", "KICK", "LARGE", "RING", "TEMP_MARK", "WINDOW", "Contents", "FileState",
    "Mismatch", "Owner", "Staged", "Stream", "atomic_write", "commit_temp", "create_from_temp",
    "discard", "fsync_dir",
    "is_temp_name", "makedirs_durably", "read_alongside", "read_bytes", "read_contents",
    "read_state", "remove_stale_temps", "remove_temps", "sha256_bytes", "stage", "state_of",
    "stream_into", "sync", "temp_path", "unlink_durably", "write_temp",
]

_PARTS = (read, large, temps, durable)


class _Package(types.ModuleType):
    """``deploy.fsio`` itself: setting (or deleting) one of its attributes does the same in
    each submodule that binds that name, as rebinding a global of the one module did."""

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if not name.startswith("__"):
            for part in _PARTS:
                if name in vars(part):
                    setattr(part, name, value)

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        if not name.startswith("__"):
            for part in _PARTS:
                if name in vars(part):
                    delattr(part, name)


sys.modules[__name__].__class__ = _Package
