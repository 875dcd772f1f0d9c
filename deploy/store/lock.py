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


def holder(path: Path) -> dict[str, object] | None:
    """Who holds the lock at ``path`` now, as ``{"pid", "command", "started"}``, or None.

    Read without taking the lock (a status that tried, even shared and for a moment, could
    make a deploy starting at that instant exit 4) and without creating the file: the
    kernel's table of flock locks (``/proc/locks``, Linux) says whether a process holds
    this file's inode and which; the file says what that run is. Where ``/proc/locks``
    cannot be read, None.
    """
    try:
        st = os.lstat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            rows = table.read().splitlines()
    except OSError:
        return None
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pid = next((int(f[4]) for f in (r.split() for r in rows)
                if len(f) > 5 and f[1] == "FLOCK" and f[5] == inode and f[4].isdigit()), None)
    if pid is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or info.get("pid") != pid:
        info = {}  # the holder has not written its name yet
    return {"pid": pid, "command": info.get("command"), "started": info.get("started")}
