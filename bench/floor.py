"""The durable group-commit floor: ``python floor.py SRC TARGET BACKUP``.

The least a durable, backed-up deploy can do, in plain Python and nothing else (no
index, no lock, no hashing): for every file of SRC, the old TARGET/<name> (if any) is
copied to BACKUP/<name>, then SRC/<name> replaces TARGET/<name>. Both go through temp
files fsynced a batch at a time, the backups durable (renamed, folder fsynced) before
any target of the batch is replaced; the target folder is fsynced at the end.
"""

import os
import sys

BATCH = 256
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = []
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def stage(pairs: list[tuple[bytes, str]]) -> None:
    """Write each (data, final path) to a temp file, fsync them all, then rename them all."""
    fds = []
    for data, final in pairs:
        tmp = final + ".tmp"
        fd = os.open(tmp, FLAGS, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o755)
        fds.append((fd, tmp, final))
    for fd, _, _ in fds:
        os.fsync(fd)
        os.close(fd)
    for _, tmp, final in fds:
        os.replace(tmp, final)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(src: str, tgt: str, bak: str) -> None:
    os.makedirs(bak, exist_ok=True)
    os.makedirs(tgt, exist_ok=True)
    names = sorted(os.listdir(src))
    for i in range(0, len(names), BATCH):
        batch = names[i:i + BATCH]
        olds = []
        for name in batch:
            try:
                olds.append((read(os.path.join(tgt, name)), os.path.join(bak, name)))
            except FileNotFoundError:
                pass
        stage(olds)
        fsync_dir(bak)
        stage([(read(os.path.join(src, name)), os.path.join(tgt, name)) for name in batch])
    fsync_dir(tgt)


if __name__ == "__main__":
    main(*sys.argv[1:4])
