"""Temp-file hygiene: how our temp files are named, found and cleaned up.

Every write goes through a temp file beside its target named
``.<target>.deploy-tmp-<pid>-<random>``, so that the scripts category can skip them, a
session can clear the ones a failed run left, and a later run can tell the temp file of
a writer that died (killed, or its cleanup failed) from one a live writer still holds.
It owns ``TEMP_MARK``, the naming, the removals and the quiet unlink that cleanup paths
use so that a cleanup error never hides the error that made it run. It stands alone:
it imports nothing from the other fsio modules.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TEMP_MARK = ".deploy-tmp-"


def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_where(folder: Path, doomed: Callable[[str], bool]) -> int:
    """Remove the files in ``folder`` whose name ``doomed`` picks; returns the count."""
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    removed = 0
    for name in names:
        if doomed(name):
            _unlink_quietly(folder / name)
            removed += 1
    return removed


def remove_temps(folder: Path, target_name: str | None = None) -> int:
    """Remove our temp files in ``folder`` (for one target name, or all); returns the count."""
    if target_name:
        prefix = f".{target_name}{TEMP_MARK}"
        return _remove_where(folder, lambda name: name.startswith(prefix))
    return _remove_where(folder, is_temp_name)


def _writer_alive(name: str) -> bool:
    """Whether the process that named this temp file (``...-tmp-PID-xxxx``) still runs."""
    try:
        pid = int(name.split(TEMP_MARK, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temps(folder: Path) -> int:
    """Remove our temp files in ``folder`` whose writer is gone (killed, or its cleanup
    failed); a live writer's temp file is left alone. Returns the count."""
    return _remove_where(folder, lambda name: is_temp_name(name) and not _writer_alive(name))
