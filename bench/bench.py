#!/usr/bin/env python3
"""Benchmark harness: the real CLI against a same-run baseline, whole-process wall time.

    python bench/bench.py [--quick] [--rows 1,2,...] [--repeat N] [--json FILE] [--dir DIR]
                          [--profile] [--keep]

Every row times the toolkit exactly as a maintainer runs it (``python -m invoke
--search-root REPO ...`` with ``DEPLOY_CONFIG`` and ``HOME`` pointing into a scratch
folder) and alternates it with its baseline in the same run (toolkit, baseline,
toolkit, baseline ...), so a noisy machine moves both sides. The ratio is the median of
the per-pair ratios; the target is what the row must stay under.

Baselines:
- the *durable floor*: a plain-Python subprocess doing the least a durable,
  backed-up deploy can do (copy each old file aside and write each new one via a
  temp file, fsync in batches, rename, fsync the folders); no index, no lock, no hash;
- the *issue-2 loop*: the old code's shape, ``shutil.copy2`` aside and over, no fsync;
- ``invoke --list`` of a one-task ``tasks.py``: the cost of starting Invoke at all;
- ``cp`` of a file twice (aside, then over).

Before every timed command the bench calls ``sync()`` so the writeback a previous step
left behind is not billed to the next one. With ``--profile`` every row that misses its
target runs its toolkit command once more under ``cProfile`` and the top costs are printed.

Stdlib only (plus the project itself, for the index schema of row 5).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20

# The durable group-commit floor, run as its own process: ``floor.py SRC TARGET BACKUP``.
# For every file of SRC: the old TARGET/<name> (if any) is copied to BACKUP/<name>, then
# SRC/<name> replaces TARGET/<name>; both through temp files, fsynced a batch at a time
# (backups durable before any target of the batch is replaced), renamed, folders fsynced.
FLOOR = r'''
import os, sys
src, tgt, bak = sys.argv[1:4]
BATCH = 256
os.makedirs(bak, exist_ok=True)
os.makedirs(tgt, exist_ok=True)
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC

def read(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = []
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)

def stage(pairs):
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

def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)

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
'''

# Issue 2's baseline: what the old code did, one copy aside and one over, no fsync at all.
ISSUE2 = r'''
import os, shutil, sys
src, tgt, bak = sys.argv[1:4]
os.makedirs(bak, exist_ok=True)
for name in sorted(os.listdir(src)):
    old = os.path.join(tgt, name)
    if os.path.exists(old):
        shutil.copy2(old, os.path.join(bak, name + ".backup"))
    shutil.copy2(os.path.join(src, name), old)
'''

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


def settle() -> None:
    """Flush the writeback earlier steps left behind so it is not billed to the next one."""
    os.sync()


def measure(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            logs: Path, expect: Iterable[int] = (0,)) -> Sample:
    """Run ``cmd`` to completion: its wall time and its own peak RSS (``wait4``)."""
    settle()
    with open(logs / "last.out", "wb") as out, open(logs / "last.err", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in tuple(expect):
        tail = (logs / "last.err").read_text(errors="replace").strip().splitlines()[-3:]
        raise BenchError(f"{' '.join(cmd[-4:])}: exit {proc.returncode}: {' / '.join(tail)}")
    return Sample(seconds, usage.ru_maxrss)


# ----------------------------------------------------------------------------------------
# scratch data
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
        self.floor = root / "floor.py"
        self.floor.write_text(FLOOR)
        self.issue2 = root / "issue2.py"
        self.issue2.write_text(ISSUE2)
        self.profile_dir = profile_dir
        self.profile_next: str | None = None  # set to a file name: profile the next CLI run

    def env(self, config: Path, home: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DEPLOY_PREFIX", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
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


SCRIPTS_CONFIG = """\
[tool.deploy]
state_dir = "state"

[tool.deploy.scripts]
source = "bin"
target = "out/bin"
"""


class ScriptsCase:
    """Rows 1-3: a deploy of N changed scripts, the same deploy unchanged, its rollback."""

    def __init__(self, scratch: Scratch, count: int, size: int) -> None:
        self.scratch = scratch
        self.count, self.size = count, size
        self.project = Project(scratch, "scripts", SCRIPTS_CONFIG)
        self.floor = scratch.root / "scripts-floor"
        self.issue2 = scratch.root / "scripts-issue2"
        self.gen = 0
        self._generation(0)
        self.project.cli("deploy.scripts")
        for where in (self.floor, self.issue2):
            shutil.copytree(where / "src", where / "tgt")

    def _generation(self, gen: int) -> None:
        files = {f"s{i:04d}": script_bytes(f"s{i:04d}", gen, self.size)
                 for i in range(self.count)}
        for folder in (self.project.root / "bin", self.floor / "src", self.issue2 / "src"):
            write_files(folder, files)

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._generation(self.gen)
        scratch, floor, gen = self.scratch, self.floor, self.gen
        scratch.profile_next = profile_name(rows.get("1"))
        t1 = self.project.cli("deploy.scripts")
        f1 = scratch.run_floor(floor / "src", floor / "tgt", floor / f"bak{gen}")
        record(rows, "1", t1, lambda: f1)
        record(rows, "1b", t1, lambda: scratch.run_issue2(
            self.issue2 / "src", self.issue2 / "tgt", self.issue2 / f"bak{gen}"))
        scratch.profile_next = profile_name(rows.get("2"))
        if "2" in rows:
            record(rows, "2", self.project.cli("deploy.scripts"), scratch.list_one_task)
        scratch.profile_next = profile_name(rows.get("3"))
        t3 = self.project.cli("rollback.scripts")
        f3 = scratch.run_floor(floor / f"bak{gen}", floor / "tgt", floor / f"rb{gen}")
        record(rows, "3", t3, lambda: f3)


VERSION_NAMES = ("AGENTS", "CLI", "DOCUMENTATION", "FRAMEWORK", "HEALTH", "INTEGRATION",
                 "MEMORY", "SERVICES", "TICKETING")
TEMPLATE_FILLER = "".join(f"# filler line {i:03d}: keeps the rendered file near 2 KiB\n"
                          for i in range(32))


class ReleaseCase:
    """Row 4: ``invoke deploy`` over scripts, templates and version files; unchanged; undone."""

    def __init__(self, scratch: Scratch, scripts: int, templates: int) -> None:
        self.scratch = scratch
        self.scripts, self.templates = scripts, templates
        lines = [SCRIPTS_CONFIG, '[tool.deploy.versions]\ndir = "versions"\n',
                 '[tool.deploy.framework]\ntemplate = "tpl/framework/CLAUDE.md"\n'
                 'install_to = "out/framework/CLAUDE.md"\nparents = []\n',
                 '[tool.deploy.context]\nproject_name = "bench"\n']
        for i in range(templates):
            lines.append(f'[[tool.deploy.templates]]\nid = "t{i:03d}"\n'
                         f'source = "tpl/t{i:03d}.j2"\ntarget = "out/etc/t{i:03d}.conf"\n')
        self.project = Project(scratch, "release", "\n".join(lines))
        root = self.project.root
        write_files(root / "tpl" / "framework",
                    {"CLAUDE.md": "# Framework {{ framework_version }}\n"}, 0o644)
        write_files(root / "tpl", {
            f"t{i:03d}.j2": f"# {{{{ project_name }}}} template {i:03d}\n"
                            "{% for name, v in versions|dictsort %}{{ name }} = {{ v }}\n"
                            "{% endfor %}" + TEMPLATE_FILLER for i in range(templates)}, 0o644)
        self.floor = scratch.root / "release-floor"
        self.gen = 0
        self._generation(0)
        self.project.cli("deploy")
        shutil.copytree(self.floor / "src", self.floor / "tgt")

    def _generation(self, gen: int) -> None:
        root = self.project.root
        scripts = {f"s{i:04d}": script_bytes(f"s{i:04d}", gen, 4096)
                   for i in range(self.scripts)}
        write_files(root / "bin", scripts)
        versions = {f"{n}_VERSION": f"{gen + 1:03d}\n".encode() for n in VERSION_NAMES}
        write_files(root / "versions", {**versions, "VERSION": f"0.{gen + 1}.0\n".encode()},
                    0o644)
        body = "".join(f"{n.lower()} = {gen + 1:03d}\n" for n in sorted(VERSION_NAMES))
        rendered = {f"t{i:03d}.conf": (f"# bench template {i:03d}\n" + body
                                       + TEMPLATE_FILLER).encode()
                    for i in range(self.templates)}
        write_files(self.floor / "src", {**scripts, **rendered, **versions})

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._generation(self.gen)
        scratch = self.scratch
        floor, gen = self.floor, self.gen
        scratch.profile_next = profile_name(rows.get("4"))
        t4 = self.project.cli("deploy")
        f4 = scratch.run_floor(floor / "src", floor / "tgt", floor / f"bak{gen}")
        record(rows, "4", t4, lambda: f4)
        scratch.profile_next = profile_name(rows.get("4b"))
        if "4b" in rows:
            record(rows, "4b", self.project.cli("deploy"), scratch.list_one_task)
        scratch.profile_next = profile_name(rows.get("4c"))
        t4c = self.project.cli("rollback.release")
        f4c = scratch.run_floor(floor / f"bak{gen}", floor / "tgt", floor / f"rb{gen}")
        record(rows, "4c", t4c, lambda: f4c)


class BigIndexCase:
    """Row 5: read-only tasks over an index that already holds N backups.

    The index is filled directly (the schema comes from ``deploy.index``): N/100 deploy
    runs of the same 100 scripts, each backing up what the run before wrote. The backup
    files are hardlinks (one inode per run), so building 100,000 costs seconds.
    """

    SCRIPTS = 100

    def __init__(self, scratch: Scratch, backups: int) -> None:
        sys.path.insert(0, str(REPO))
        from deploy.index import CHANGE_COLS, Index

        self.scratch = scratch
        self.project = Project(scratch, "big-index", SCRIPTS_CONFIG)
        root = self.project.root
        tree = root / "state" / "backups"
        for folder in ("framework", "scripts", "versions", "templates",
                       "parent_directory_manager"):
            (tree / folder).mkdir(parents=True, exist_ok=True)
        runs = max(backups // self.SCRIPTS, 1)
        names = [f"s{j:03d}" for j in range(self.SCRIPTS)]
        target_dir = root / "out" / "bin"

        def content(k: int) -> bytes:
            return f"#!/bin/sh\necho version {k}\n".encode()

        Index(tree / "index.sqlite").close()
        start = datetime.now() - timedelta(minutes=runs + 5)
        run_rows, change_rows = [], []
        cols = CHANGE_COLS.split(", ")
        for k in range(1, runs + 1):
            when = start + timedelta(minutes=k)
            iso = when.astimezone().isoformat(timespec="milliseconds")
            stamp = when.strftime("%Y%m%d_%H%M%S")
            old, new = content(k - 1), content(k)
            old_sha, new_sha = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
            run_rows.append((k, "deploy", "bench", "invoke deploy.scripts", 1, iso, iso, "done",
                             None, "scripts"))
            first = tree / "scripts" / f"{names[0]}_backup_{stamp}"
            first.write_bytes(old)
            first.chmod(0o755)
            for j, name in enumerate(names):
                backup = f"scripts/{name}_backup_{stamp}"
                if j:
                    os.link(first, tree / backup)
                values = {"seq": (k - 1) * self.SCRIPTS + j + 1, "run": k,
                          "category": "scripts", "key": name,
                          "target": str(target_dir / name), "action": "update",
                          "backup": backup, "old_sha256": old_sha, "old_size": len(old),
                          "old_mode": 0o755, "new_sha256": new_sha, "new_size": len(new),
                          "new_mode": 0o755, "created": iso, "created_ts": when.timestamp(),
                          "state": "applied", "undone_by": None, "reverts": None, "pruned": 0}
                change_rows.append(tuple(values[c] for c in cols))
        import sqlite3

        db = sqlite3.connect(tree / "index.sqlite")
        with db:
            db.executemany("INSERT INTO runs (id, kind, actor, command, pid, started, finished,"
                           " state, undoes, categories) VALUES (?,?,?,?,?,?,?,?,?,?)", run_rows)
            db.executemany(f"INSERT INTO changes ({CHANGE_COLS}) VALUES "
                           f"({', '.join('?' for _ in cols)})", change_rows)
        db.close()
        (tree / "lock").touch()
        latest = {n: content(runs) for n in names}
        write_files(target_dir, latest)
        write_files(root / "bin", latest)
        self.count = len(change_rows)

    def cycle(self, rows: dict[str, Row]) -> None:
        commands = {"5a": ("backups.status", "--json"),
                    "5b": ("rollback.scripts", "--name", "s000", "--dry-run"),
                    "5c": ("history", "--json", "--limit", "50", "--page", "2")}
        for key, args in commands.items():
            if key in rows:
                self.scratch.profile_next = profile_name(rows[key])
                record(rows, key, self.project.cli(*args), self.scratch.list_one_task)


class BigFileCase:
    """Row 6: one huge script deployed with its backup, against ``cp`` aside and over."""

    def __init__(self, scratch: Scratch, size: int) -> None:
        self.scratch = scratch
        self.project = Project(scratch, "big-file", SCRIPTS_CONFIG)
        self.base = scratch.root / "big-file-cp"
        src = self.project.root / "bin" / "big"
        src.parent.mkdir(parents=True, exist_ok=True)
        block = os.urandom(MIB)
        with open(src, "wb") as handle:
            for i in range(size // MIB):
                handle.write(i.to_bytes(8, "little") + block[8:])
        src.chmod(0o755)
        self.project.cli("deploy.scripts")
        (self.base / "bak").mkdir(parents=True)
        shutil.copy(src, self.base / "src")
        shutil.copy(src, self.base / "tgt")
        self.gen = 0

    @staticmethod
    def _touch(path: Path, gen: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, f"gen {gen:08d}".encode(), 0)
        finally:
            os.close(fd)

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._touch(self.project.root / "bin" / "big", self.gen)
        self._touch(self.base / "src", self.gen)
        self.scratch.profile_next = profile_name(rows.get("6"))
        rows["6"].toolkit.append(self.project.cli("deploy.scripts"))
        for old in (self.base / "bak").iterdir():
            old.unlink()  # only the newest aside copy is kept: the disk is not the point
        src, tgt, bak = self.base / "src", self.base / "tgt", self.base / "bak" / f"{self.gen}"
        rows["6"].baseline.append(measure(
            ["sh", "-c", 'cp -- "$1" "$2" && cp -- "$3" "$1"', "cp2", str(tgt), str(bak),
             str(src)], logs=self.scratch.logs))


class ListCase:
    """Row 7: listing the project's tasks against listing a one-task ``tasks.py``."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch

    def cycle(self, rows: dict[str, Row]) -> None:
        self.scratch.profile_next = profile_name(rows.get("7"))
        rows["7"].toolkit.append(self.scratch.list_project())
        rows["7"].baseline.append(self.scratch.list_one_task())


ANSIBLE_PLAY = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: copy each script with a backup
      ansible.builtin.copy:
        src: "{{{{ item }}}}"
        dest: "{tgt}/"
        mode: "0755"
        backup: true
      with_fileglob: "{src}/*"
"""


class AnsibleCase:
    """Row 8 (optional): ``deploy.scripts`` of 100 changed files against Ansible ``copy``."""

    def __init__(self, scratch: Scratch, count: int) -> None:
        self.scratch = scratch
        self.count = count
        self.project = Project(scratch, "ansible-tk", SCRIPTS_CONFIG)
        self.base = scratch.root / "ansible"
        self.gen = 0
        self._generation(0)
        self.project.cli("deploy.scripts")
        shutil.copytree(self.base / "src", self.base / "tgt")
        self.play = self.base / "play.yml"
        self.play.write_text(ANSIBLE_PLAY.format(src=self.base / "src", tgt=self.base / "tgt"))

    def _generation(self, gen: int) -> None:
        files = {f"s{i:04d}": script_bytes(f"s{i:04d}", gen, 4096) for i in range(self.count)}
        write_files(self.project.root / "bin", files)
        write_files(self.base / "src", files)

    def cycle(self, rows: dict[str, Row]) -> None:
        self.gen += 1
        self._generation(self.gen)
        rows["8"].toolkit.append(self.project.cli("deploy.scripts"))
        env = {**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false",
               "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
        rows["8"].baseline.append(measure(
            ["ansible-playbook", "-i", "localhost,", str(self.play)], env=env,
            logs=self.scratch.logs))


# ----------------------------------------------------------------------------------------
# rows, sizes, the run
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    scripts: int
    release_scripts: int
    release_templates: int
    backups: int
    big_file: int
    ansible: int


FULL = Sizes(scripts=1000, release_scripts=200, release_templates=200, backups=100_000,
             big_file=1 << 30, ansible=100)
QUICK = Sizes(scripts=250, release_scripts=50, release_templates=50, backups=10_000,
              big_file=64 * MIB, ansible=100)


def make_rows(s: Sizes) -> dict[str, Row]:
    floor = "durable floor"
    one = "--list one-task"
    big = f"{s.big_file // MIB} MiB" if s.big_file < 1 << 30 else f"{s.big_file >> 30} GiB"
    rows = [
        Row("1", f"deploy.scripts, {s.scripts:,} changed 4 KiB", 1.5, floor),
        Row("1b", f"deploy.scripts, {s.scripts:,} changed (issue 2)", None, "copy2 loop"),
        Row("2", f"deploy.scripts, {s.scripts:,} unchanged", 1.5, one),
        Row("3", f"rollback.scripts of that run ({s.scripts:,})", 1.5, floor),
        Row("4", f"deploy release {s.release_scripts}+{s.release_templates}+9", 2.0, floor),
        Row("4b", "deploy release, unchanged", 1.5, one),
        Row("4c", "rollback.release of that release", 2.0, floor),
        Row("5a", f"backups.status --json, {s.backups:,} backups", 2.0, one),
        Row("5b", f"rollback.scripts --name --dry-run, {s.backups:,}", 2.0, one),
        Row("5c", f"history --json (page 2), {s.backups:,} backups", 2.0, one),
        Row("6", f"deploy.scripts, one {big} file", 2.5, "cp twice", rss_limit_mib=64),
        Row("7", "invoke --list of the project", 1.2, one),
        Row("8", f"deploy.scripts {s.ansible} changed vs ansible copy", None, "ansible copy"),
    ]
    return {r.key: r for r in rows}


def profile_name(row: Row | None) -> str | None:
    return f"row{row.key}.prof" if row is not None and row.profile == "wanted" else None


def select_rows(all_rows: dict[str, Row], wanted: str | None) -> dict[str, Row]:
    if not wanted:
        return dict(all_rows)
    keys = [w.strip() for w in wanted.split(",") if w.strip()]
    chosen = {}
    for key in keys:
        matched = [k for k in all_rows if k == key or (k.rstrip("abc") == key)]
        if not matched:
            raise SystemExit(f"error: no row {key!r}; rows are 1-8")
        for k in matched:
            chosen[k] = all_rows[k]
    return {k: all_rows[k] for k in all_rows if k in chosen}


def project_tasks(scratch: Scratch) -> str:
    scratch.list_project()
    return (scratch.logs / "last.out").read_text()


def build_cases(scratch: Scratch, rows: dict[str, Row], sizes: Sizes,
                say: Callable[[str], None]) -> list[tuple[tuple[str, ...], Any]]:
    """Set up each group of selected rows; a group that cannot run gets its rows' note."""
    groups: list[tuple[tuple[str, ...], Callable[[], Any]]] = [
        (("1", "1b", "2", "3"), lambda: ScriptsCase(scratch, sizes.scripts, 4096)),
        (("4", "4b", "4c"), lambda: ReleaseCase(scratch, sizes.release_scripts,
                                                sizes.release_templates)),
        (("5a", "5b", "5c"), lambda: BigIndexCase(scratch, sizes.backups)),
        (("6",), lambda: BigFileCase(scratch, sizes.big_file)),
        (("7",), lambda: ListCase(scratch)),
        (("8",), lambda: AnsibleCase(scratch, sizes.ansible)),
    ]
    listing = project_tasks(scratch) if rows.keys() & {"4", "4b", "4c"} else ""
    cases = []
    for keys, make in groups:
        mine = tuple(k for k in keys if k in rows)
        if not mine:
            continue
        if "4" in keys and "deploy.templates" not in listing:
            for k in mine:
                rows[k].note = "n/a: not built yet (no deploy.templates task)"
            continue
        if "8" in keys and shutil.which("ansible-playbook") is None:
            rows["8"].note = "skipped: ansible-core not installed"
            continue
        say(f"setting up rows {', '.join(mine)} ...")
        started = time.perf_counter()
        try:
            case = make()
        except (BenchError, OSError) as err:
            for k in mine:
                rows[k].note = f"error: setup: {err}"
            continue
        say(f"  ready in {time.perf_counter() - started:.1f} s")
        cases.append((mine, case))
    return cases


def run_cases(cases: list[tuple[tuple[str, ...], Any]], rows: dict[str, Row], repeat: int,
              say: Callable[[str], None]) -> None:
    for i in range(repeat):
        for keys, case in cases:
            live = {k: rows[k] for k in keys if not rows[k].note}
            if not live:
                continue
            say(f"repeat {i + 1}/{repeat}: rows {', '.join(live)}")
            try:
                case.cycle(live)
            except (BenchError, OSError) as err:
                for k in live:
                    rows[k].note = f"error: {err}"


# ----------------------------------------------------------------------------------------
# the machine and the table
# ----------------------------------------------------------------------------------------
def filesystem_of(path: Path) -> str:
    real = os.path.realpath(path)
    best = ("", "?", "?")
    try:
        with open("/proc/self/mounts") as handle:
            for line in handle:
                dev, mnt, fstype = line.split()[:3]
                mnt = mnt.replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best[0]):
                    best = (mnt, fstype, dev)
    except OSError:
        pass
    return f"{best[1]} ({best[2]} on {best[0]})"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine(scratch: Path) -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(), "scratch": str(scratch),
            "filesystem": filesystem_of(scratch)}


def fmt_time(samples: list[Sample]) -> str:
    if not samples:
        return "-"
    secs = [s.seconds for s in samples]
    return f"{statistics.median(secs):7.3f} [{min(secs):.3f}-{max(secs):.3f}]"


def table(rows: Iterable[Row]) -> str:
    head = ("row", "what", "toolkit s median [min-max]", "baseline",
            "baseline s median [min-max]", "ratio", "target", "peak MiB", "verdict")
    lines: list[tuple[str, ...]] = []
    for r in rows:
        if r.note:
            lines.append((r.key, r.title, r.note))
            continue
        ratio, peak = r.ratio(), r.peak_mib()
        target = "-" if r.target is None else f"<= {r.target:g}"
        if r.rss_limit_mib is not None:
            target += f", <= {r.rss_limit_mib:g} MiB"
        lines.append((r.key, r.title, fmt_time(r.toolkit), r.baseline_name, fmt_time(r.baseline),
                      f"{ratio:.2f}" if ratio is not None else "-", target,
                      f"{peak:.0f}" if peak is not None else "-", r.verdict()))
    full = [line for line in lines if len(line) == len(head)]
    widths = [max([len(head[i])] + [len(line[i]) for line in full]) for i in range(len(head))]
    for line in lines:
        if len(line) != len(head):
            widths[0] = max(widths[0], len(line[0]))
            widths[1] = max(widths[1], len(line[1]))
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    for line in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())
    return "\n".join(out)


# ----------------------------------------------------------------------------------------
# profiles
# ----------------------------------------------------------------------------------------
INTEREST = ("fsync", "execute", "commit", "sha256", "update", "read_state", "write_temp",
            "apply", "plan", "preflight", "_backup_names", "_write_backups", "_write_targets",
            "recover", "session", "_find_and_load", "load", "render", "replace", "read", "write",
            "open", "stat", "exists", "listdir", "scandir", "unique_name", "check_backup",
            "transaction", "flock", "hold", "dumps", "dump")


def summarize_profile(path: Path, top: int = 14) -> str:
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        where = filename
        if str(REPO) in filename:
            where = os.path.relpath(filename, REPO)
        elif filename == "~":
            where = ""
        else:
            where = Path(filename).name
        label = f"{where}:{line}({func})" if where else func
        entries.append((tt, ct, nc, label, func))
    out = [f"  profile {path.name}: {total:.3f} s in-process (cProfile; adds overhead)",
           "    self time (tottime):"]
    for tt, _ct, nc, label, _f in sorted(entries, reverse=True)[:top]:
        out.append(f"      {tt:8.3f} s  {nc:>8} calls  {label}")
    out.append("    cumulative (selected):")
    chosen = [e for e in entries if e[4] in INTEREST or e[4].strip("<>").split(" ")[-1]
              in INTEREST]
    for _tt, ct, nc, label, _f in sorted(chosen, key=lambda e: e[1], reverse=True)[:top]:
        out.append(f"      {ct:8.3f} s  {nc:>8} calls  {label}")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes and 3 repeats (10,000 backups, 64 MiB file)")
    p.add_argument("--rows", help="comma-separated rows to run, e.g. 1,2,7 (default: all)")
    p.add_argument("--repeat", type=int, help="pairs per row (default 5; --quick 3)")
    p.add_argument("--json", dest="json_file", help="also write the results to this file")
    p.add_argument("--dir", help="make the scratch folder under DIR (default: the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--profile", action="store_true",
                   help="rerun each row that misses its target under cProfile; print top costs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (3 if args.quick else 5)
    if repeat < 1:
        raise SystemExit("error: --repeat must be at least 1")
    rows = select_rows(make_rows(sizes), args.rows)
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="deploy-bench-", dir=args.dir))

    def say(msg: str) -> None:
        print(f"# {msg}", file=sys.stderr, flush=True)

    info = machine(root)
    try:
        scratch = Scratch(root, root / "profiles")
        (root / "profiles").mkdir()
        started = time.perf_counter()
        cases = build_cases(scratch, rows, sizes, say)
        run_cases(cases, rows, repeat, say)
        if args.profile:
            missed = [r for r in rows.values() if r.verdict() == "MISS"]
            for r in missed:
                r.profile = "wanted"
            if missed:
                say(f"profiling rows {', '.join(r.key for r in missed)} ...")
                saved = {r.key: (list(r.toolkit), list(r.baseline)) for r in rows.values()}
                run_cases([(k, c) for k, c in cases if any(rows[x].profile for x in k)],
                          rows, 1, say)
                for r in rows.values():
                    r.toolkit, r.baseline = saved[r.key]
                    path = root / "profiles" / f"row{r.key}.prof"
                    if r.profile and path.exists():
                        r.profile = summarize_profile(path)
                    elif r.profile:
                        r.profile = "  (no profile written)"
        elapsed = time.perf_counter() - started
        print(f"machine: {info['cpus']} cpu(s), {info['cpu_model']}; {info['python']}; "
              f"{info['platform']}")
        print(f"scratch: {info['scratch']} on {info['filesystem']}")
        print(f"mode: {'quick' if args.quick else 'full'}, {repeat} pair(s) per row, "
              f"toolkit and baseline alternating; bench took {elapsed:.0f} s")
        print()
        print(table(rows.values()))
        for r in rows.values():
            if r.profile and r.profile != "wanted":
                print(f"\nrow {r.key} ({r.title}):\n{r.profile}")
        if args.json_file:
            document = {"machine": info, "quick": args.quick, "repeat": repeat,
                        "sizes": sizes.__dict__, "rows": [r.as_json() for r in rows.values()]}
            Path(args.json_file).write_text(json.dumps(document, indent=2) + "\n")
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.note.startswith("error") for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
