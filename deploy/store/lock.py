"""One run at a time per state dir: ``flock`` on a permanent lock file.

The file is never deleted (deleting a lock file lets two holders in); after
taking the lock the holder writes its pid, command and start time into it so a
waiting run can name who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.errors import Locked, WriteFailed

POLL_SECONDS = 0.05


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "an unknown process"
    return f"pid {info.get('pid')} ({info.get('command')!r}, started {info.get('started')})"


@contextmanager
def hold(path: Path, *, command: str, started: str, wait: float = 0) -> Iterator[None]:
    """Hold the lock at ``path`` for the body; wait up to ``wait`` seconds, then raise Locked."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + max(wait, 0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise Locked(
                        f"{path}: another run holds the lock: {_holder(fd)}; "
                        "wait for it or pass --wait SECONDS") from None
                time.sleep(POLL_SECONDS)
        info = json.dumps({"pid": os.getpid(), "command": command, "started": started})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode("utf-8"), 0)
        except OSError as err:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise WriteFailed(f"{path}: cannot record the lock holder: "
                              f"{err.strerror or err}") from err
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
