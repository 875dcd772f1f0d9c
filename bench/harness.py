"""The harness's measuring and scratch plumbing: samples, rows, the CLI in a scratch project.

Every timed command is a whole process: ``measure`` starts it, waits with ``wait4`` for
its wall time and its own peak RSS, and reports a failure as ``BenchError`` naming the
command and the last lines of its stderr.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1 << 20

ONE_TASK = '''\
from invoke import task


@task
def hello(c):
    """Say hello."""
    print("hello")
'''


# ----------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------
class BenchError(Exception):
    """A command under test failed; the bench reports it in its row instead of a time."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    maxrss_kib: int


@dataclass
class Row:
    key: str
    title: str
    target: float | None                 # the ratio to stay under; None: informational
    baseline_name: str = ""
    rss_limit_mib: float | None = None
    toolkit: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)
    note: str = ""                       # "n/a: ...", "skipped: ...", "error: ..."
    profile: str = ""

    def ratios(self) -> list[float]:
        return [t.seconds / b.seconds for t, b in zip(self.toolkit, self.baseline, strict=False)
                if b.seconds > 0]

    def ratio(self) -> float | None:
        r = self.ratios()
        return statistics.median(r) if r else None

    def peak_mib(self) -> float | None:
        return max(s.maxrss_kib for s in self.toolkit) / 1024 if self.toolkit else None

    def verdict(self) -> str:
        ratio = self.ratio()
        if self.note or ratio is None:
            return ""
        if self.target is None:
            return "info"
        ok = ratio <= self.target
        peak = self.peak_mib()
        if self.rss_limit_mib is not None and peak is not None and peak > self.rss_limit_mib:
            ok = False
        return "ok" if ok else "MISS"

    def as_json(self) -> dict[str, Any]:
        def side(samples: list[Sample]) -> dict[str, Any]:
            secs = [s.seconds for s in samples]
            return {"samples": secs, "maxrss_kib": [s.maxrss_kib for s in samples],
                    "median": statistics.median(secs) if secs else None,
                    "min": min(secs, default=None), "max": max(secs, default=None)}
        return {"row": self.key, "title": self.title, "baseline_name": self.baseline_name,
                "target": self.target, "rss_limit_mib": self.rss_limit_mib,
                "toolkit": side(self.toolkit), "baseline": side(self.baseline),
                "ratios": self.ratios(), "ratio": self.ratio(), "peak_mib": self.peak_mib(),
                "verdict": self.verdict(), "note": self.note}


def record(rows: dict[str, Row], key: str, toolkit: Sample,
           baseline: Callable[[], Sample]) -> None:
    """Add one (toolkit, baseline) pair to ``rows[key]`` when that row was asked for."""
    if key in rows:
        rows[key].toolkit.append(toolkit)
        rows[key].baseline.append(baseline())


class Spawner:
    """The small process that runs every timed command (see ``spawner.py`` for why)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "spawner.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        atexit.register(self.close)

    def run(self, cmd: list[str], env: dict[str, str], cwd: Path | None, out: Path,
            err: Path) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"cmd": cmd, "env": env, "cwd": str(cwd) if cwd else None, "out": str(out),
                   "err": str(err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise BenchError(f"the spawner died running {' '.join(cmd)}")
        result: dict[str, Any] = json.loads(answer)
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()


_spawner: Spawner | None = None


def start_spawner() -> None:
    """Start the spawner now, while the bench is still small; ``measure`` uses it."""
    global _spawner
    if _spawner is None:
        _spawner = Spawner()


def child_env() -> dict[str, str]:
    """This process's environment, with Python's bytecode cache at its default.

    A sandbox may set ``PYTHONDONTWRITEBYTECODE``; a maintainer's machine does not, and
    ``pip install`` compiles a package's modules. Timing every child recompiling the
    toolkit's own sources would bill a cost no user pays, so every timed command (the
    baselines too) runs with the cache on; the first, untimed run of each warms it.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            logs: Path, expect: Iterable[int] = (0,)) -> Sample:
    """Run ``cmd`` to completion after a ``sync()``: its wall time and its own peak RSS."""
    start_spawner()
    assert _spawner is not None
    result = _spawner.run(cmd, child_env() if env is None else env, cwd,
                          logs / "last.out", logs / "last.err")
    if result["rc"] not in tuple(expect):
        tail = (logs / "last.err").read_text(errors="replace").strip().splitlines()[-3:]
        raise BenchError(f"{' '.join(cmd[-4:])}: exit {result['rc']}: {' / '.join(tail)}")
    return Sample(result["seconds"], result["maxrss_kib"])


# ----------------------------------------------------------------------------------------
# scratch projects
# ----------------------------------------------------------------------------------------
def script_bytes(name: str, gen: int, size: int) -> bytes:
    head = f"#!/bin/sh\n# {name} generation {gen}\necho {name}\n#".encode()
    return head + os.urandom(max(size - len(head) - 1, 0) // 2).hex().encode()[
        : max(size - len(head) - 1, 0)] + b"\n"


def write_files(folder: Path, files: dict[str, bytes] | dict[str, str], mode: int = 0o755) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = folder / name
        # Unlink and create rather than truncate: ext4's auto_da_alloc flushes a file that
        # is truncated and rewritten, which would make the untimed setup crawl.
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data.encode() if isinstance(data, str) else data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.chmod(path, mode)


class Scratch:
    """The scratch root: logs, the one-task project, the floor scripts, the CLI's env."""

    def __init__(self, root: Path, profile_dir: Path | None = None) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.one_task = root / "one-task"
        self.one_task.mkdir(exist_ok=True)
        (self.one_task / "tasks.py").write_text(ONE_TASK)
        self.floor = HERE / "floor.py"
        self.issue2 = HERE / "copy_loop.py"
        self.profile_dir = profile_dir
        self.profile_next: str | None = None  # set to a file name: profile the next CLI run
        # The installed command (rows 2i, 7i): beside this Python (a venv's bin), else on PATH.
        beside = Path(sys.executable).parent / "claude-pm-deploy"
        found = str(beside) if beside.is_file() else shutil.which("claude-pm-deploy")
        self.installed: Path | None = Path(found) if found else None

    def env(self, config: Path, home: Path) -> dict[str, str]:
        env = child_env()
        for name in ("DEPLOY_PREFIX", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
            env.pop(name, None)
        env.update(DEPLOY_CONFIG=str(config), HOME=str(home))
        return env

    def cli(self, config: Path, home: Path, *args: str, expect: Iterable[int] = (0,)) -> Sample:
        prefix = [sys.executable]
        if self.profile_next and self.profile_dir is not None:
            prefix += ["-m", "cProfile", "-o", str(self.profile_dir / self.profile_next)]
            self.profile_next = None
        return measure([*prefix, "-m", "invoke", "--search-root", str(REPO), *args],
                       env=self.env(config, home), cwd=config.parent, logs=self.logs,
                       expect=expect)

    def installed_cli(self, config: Path, home: Path, *args: str,
                      expect: Iterable[int] = (0,)) -> Sample:
        """The same command through the installed ``claude-pm-deploy`` (its console script)."""
        if self.installed is None:
            raise BenchError("claude-pm-deploy is not installed")
        return measure([str(self.installed), *args], env=self.env(config, home),
                       cwd=config.parent, logs=self.logs, expect=expect)

    def list_one_task(self) -> Sample:
        return measure([sys.executable, "-m", "invoke", "--search-root", str(self.one_task),
                        "--list"], env=self.env(self.root / "none.toml", self.root),
                       logs=self.logs)

    def list_project(self) -> Sample:
        return self.cli(self.root / "none.toml", self.root, "--list")

    def run_floor(self, src: Path, tgt: Path, bak: Path) -> Sample:
        return measure([sys.executable, str(self.floor), str(src), str(tgt), str(bak)],
                       logs=self.logs)

    def run_issue2(self, src: Path, tgt: Path, bak: Path) -> Sample:
        return measure([sys.executable, str(self.issue2), str(src), str(tgt), str(bak)],
                       logs=self.logs)


class Project:
    """A scratch project with its own config, home and state."""

    def __init__(self, scratch: Scratch, name: str, config: str) -> None:
        self.scratch = scratch
        self.root = scratch.root / name
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "deploy.toml"
        self.config.write_text(config)

    def cli(self, *args: str, expect: Iterable[int] = (0,)) -> Sample:
        return self.scratch.cli(self.config, self.home, *args, expect=expect)


def profile_name(row: Row | None) -> str | None:
    return f"row{row.key}.prof" if row is not None and row.profile == "wanted" else None
