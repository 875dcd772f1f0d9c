"""Atomic durable writes: content and mode land whole, and nothing is left behind."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy import fsio


@given(data=st.binary(max_size=3 * fsio.CHUNK // 2), mode=st.sampled_from([0o600, 0o644,
                                                                            0o755, 0o700]))
@settings(max_examples=40, deadline=None)
def test_atomic_write_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                 mode: int) -> None:
    """What atomic_write writes reads back byte for byte, with its mode and hash."""
    folder = tmp_path_factory.mktemp("w")
    target = folder / "t"

    sha, size = fsio.atomic_write(target, data, mode)

    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert fsio.read_state(target) == fsio.FileState(True, sha, size, mode,
                                                     os.getuid(), os.getgid())
    assert os.listdir(folder) == ["t"]


def test_streamed_copy_hashes_while_copying(tmp_path: Path) -> None:
    """Copying from a Path streams in chunks and returns the source's hash."""
    src = tmp_path / "src"
    src.write_bytes(os.urandom(fsio.CHUNK * 2 + 17))

    sha, size = fsio.atomic_write(tmp_path / "dst", src, 0o644)

    assert (tmp_path / "dst").read_bytes() == src.read_bytes()
    assert sha == fsio.read_state(src).sha256 and size == src.stat().st_size


def write_failing_at(nth: int, *, short: int | None = None) -> Callable[[int, bytes], int]:
    """An ``os.write`` whose ``nth`` call fails with ENOSPC; the others write (at most
    ``short`` bytes each, when given, so that the writer must loop)."""
    real_write = os.write
    calls = {"n": 0}

    def failing(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == nth:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data if short is None else data[:short])

    return failing


def test_failed_write_leaves_target_and_no_temp(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC part way leaves the old target whole and removes the temp file."""
    folder = tmp_path / "w"
    folder.mkdir()
    target = folder / "t"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "write", write_failing_at(2, short=10))
    with pytest.raises(OSError) as caught:
        fsio.atomic_write(target, b"new content that is long", 0o644)
    monkeypatch.undo()

    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert os.listdir(folder) == ["t"]


def test_read_state_refuses_symlinks(tmp_path: Path) -> None:
    """A symlinked target is never followed: reading it raises instead."""
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")

    with pytest.raises(OSError):
        fsio.read_state(tmp_path / "link")
    assert fsio.read_state(tmp_path / "missing") == fsio.ABSENT


def test_remove_temps_only_touches_ours(tmp_path: Path) -> None:
    """Cleanup removes this toolkit's temp files and nothing else."""
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    (tmp_path / ".tool.deploy-tmp-1-ab").write_text("x")
    (tmp_path / ".tool.bak").write_text("keep")
    (tmp_path / "tool").write_text("keep")

    removed = fsio.remove_temps(tmp_path, "tool")

    assert removed == 1
    assert sorted(os.listdir(tmp_path)) == [".tool.bak", "tool"]


SIZES = st.one_of(st.integers(0, 64), st.integers(4000, 4200),
                  st.integers(fsio.CHUNK - 2, fsio.CHUNK + 2))


@given(size=SIZES, seed=st.integers(0, 2**32 - 1),
       flip=st.one_of(st.none(), st.integers(0, fsio.CHUNK + 2)), extra=st.booleans())
@settings(max_examples=60, deadline=None)
def test_read_contents_compares_like_bytes(tmp_path_factory: pytest.TempPathFactory, size: int,
                                           seed: int, flip: int | None, extra: bool) -> None:
    """Two files compare equal exactly when their bytes do, small or large, and the hash and
    size read back are those of the bytes (what the no-change path decides from)."""
    import hashlib
    import random

    # Bytes from a drawn seed: hypothesis drawing a megabyte itself is far too slow.
    a = random.Random(seed).randbytes(size)
    b = bytearray(a)
    if flip is not None and b:
        b[flip % len(b)] ^= 0x01
    if extra:
        b += b"\n"
    folder = tmp_path_factory.mktemp("c")
    (folder / "a").write_bytes(a)
    (folder / "b").write_bytes(bytes(b))

    ca, cb = fsio.read_contents(folder / "a"), fsio.read_contents(folder / "b")

    assert ca is not None and cb is not None
    assert ca.same_bytes(cb) == (a == bytes(b)) == cb.same_bytes(ca)
    assert (ca.sha256, ca.size) == (hashlib.sha256(a).hexdigest(), len(a))
    assert (ca.data is None) == (len(a) >= fsio.CHUNK)
    assert fsio.read_state(folder / "a") == fsio.FileState(True, ca.sha256, len(a), ca.mode,
                                                         os.getuid(), os.getgid())


@pytest.mark.parametrize("hint_delta", [-100, -1, 0, 1, 100])
def test_a_stale_size_still_reads_the_whole_file(tmp_path: Path, hint_delta: int) -> None:
    """The one-read fast path trusts only a read of exactly the size fstat gave; a file that
    grew or shrank since (a stale hint) is read on to its end, by both readers."""
    data = os.urandom(5000)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert fsio._read_small(fd, len(data) + hint_delta) == data
        os.lseek(fd, 0, os.SEEK_SET)
        assert b"".join(bytes(c) for c in fsio._chunks(fd, len(data) + hint_delta)) == data
    finally:
        os.close(fd)


def test_read_contents_absent_and_refused(tmp_path: Path) -> None:
    assert fsio.read_contents(tmp_path / "missing") is None
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError):
        fsio.read_contents(tmp_path / "dir")


@given(extra=st.sampled_from([0, 1, fsio.CHUNK - 1, fsio.CHUNK, 5 * fsio.CHUNK + 12345]),
       seed=st.integers(0, 2**32 - 1), mode=st.sampled_from([0o644, 0o755]))
@settings(max_examples=8, deadline=None)
def test_large_copy_round_trip(tmp_path_factory: pytest.TempPathFactory, extra: int, seed: int,
                               mode: int) -> None:
    """A large file (copied with its hash on a second thread, through a ring of buffers
    that wraps many times) lands byte for byte, and the hash is of those bytes in order."""
    import hashlib
    import random

    folder = tmp_path_factory.mktemp("big")
    data = random.Random(seed).randbytes(fsio.LARGE + extra)
    (folder / "src").write_bytes(data)

    sha, size = fsio.atomic_write(folder / "dst", folder / "src", mode)

    assert (folder / "dst").read_bytes() == data
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert stat.S_IMODE((folder / "dst").stat().st_mode) == mode
    assert sorted(os.listdir(folder)) == ["dst", "src"]


@pytest.mark.parametrize("nth", [1, 3, 9])
def test_large_copy_failing_part_way_leaves_no_temp(tmp_path: Path, nth: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the n-th chunk of a large copy: the error surfaces, the hashing thread is
    done with, the target keeps its bytes and no temp file is left."""
    import threading

    folder = tmp_path / "w"
    folder.mkdir()
    src = folder / "src"
    src.write_bytes(os.urandom(fsio.LARGE + fsio.CHUNK))
    target = folder / "t"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "write", write_failing_at(nth))
    with pytest.raises(OSError) as caught:
        fsio.atomic_write(target, src, 0o644)
    monkeypatch.undo()

    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(folder)) == ["src", "t"]
    assert not [t for t in threading.enumerate() if t.name.startswith("deploy-")]


def test_large_copy_ignores_failed_writeback_advice(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting writeback early is advice: if the kernel refuses it the copy still lands
    (the fsync after it is what makes the bytes durable)."""
    advised = []

    def refuse(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length))
        raise OSError(errno.EINVAL, "Invalid argument")

    data = os.urandom(3 * fsio.LARGE)
    (tmp_path / "src").write_bytes(data)
    monkeypatch.setattr(os, "posix_fadvise", refuse)

    sha, _size = fsio.atomic_write(tmp_path / "dst", tmp_path / "src", 0o644)

    assert (tmp_path / "dst").read_bytes() == data
    assert sha == fsio.read_state(tmp_path / "src").sha256
    if fsio._FADVISE is not None:  # Linux: the advice covers every byte, in order
        assert [o for o, _ in advised] == [i * fsio.KICK for i in range(len(advised))]
        assert sum(n for _, n in advised) == len(data) - len(data) % fsio.KICK


@pytest.mark.parametrize("size", [10, fsio.LARGE + 3])
def test_read_alongside_is_both_reads(tmp_path: Path, size: int) -> None:
    """read_alongside gives what read_contents and the other call give, small or large."""
    (tmp_path / "a").write_bytes(os.urandom(size))
    (tmp_path / "b").write_bytes(os.urandom(fsio.LARGE + 1))

    got, other = fsio.read_alongside(tmp_path / "a", lambda: fsio.read_contents(tmp_path / "b"))

    want = fsio.read_contents(tmp_path / "a")
    assert got is not None and want is not None and other is not None
    assert (got.sha256, got.size, got.mode) == (want.sha256, want.size, want.mode)
    assert other.sha256 == fsio.read_state(tmp_path / "b").sha256
    assert fsio.read_alongside(tmp_path / "missing", lambda: 7) == (None, 7)


@pytest.mark.parametrize("size", [10, fsio.LARGE + 3])
def test_read_alongside_raises_in_order(tmp_path: Path, size: int,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors come out as if the two reads ran in turn: the path's own first."""
    (tmp_path / "a").write_bytes(os.urandom(size))

    def other() -> None:
        raise ValueError("other")

    with pytest.raises(ValueError, match="other"):
        fsio.read_alongside(tmp_path / "a", other)
    real_readv, real_read = os.readv, os.read

    def broken_readv(fd: int, buffers: list[bytearray]) -> int:
        raise OSError(errno.EIO, "Input/output error")

    def broken_read(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "readv", broken_readv)
    monkeypatch.setattr(os, "read", broken_read)
    with pytest.raises(OSError) as caught:
        fsio.read_alongside(tmp_path / "a", other)
    assert caught.value.errno == errno.EIO
    monkeypatch.setattr(os, "readv", real_readv)
    monkeypatch.setattr(os, "read", real_read)
