"""SIGKILL during ``backups.migrate --remove-originals``, through the real CLI.

A project holds the original's v0.7.5 and v0.8.0 backup layouts (``tests/legacy_trees.py``)
plus a few hundred more script backups in v0.8.0's tree, so a migration takes long
enough to be killed anywhere: while the copies are written (before the commit that marks
them imported), between that commit and the removals, and part way through the removals.
Random kills (12; 100 with ``--runslow``) land at random points. When strace is
installed, kills at the k-th rename (a copy going into place) and at the k-th removal of
an original make sure each window is hit every time.

Right after each kill, nothing may be lost: every original that is gone has a copy in the
tree, committed as imported, that hashes to its bytes. Then the same command runs again
(half the time killed too), and once more to the end: every offered file must be imported
exactly once, every offered original removed, the files not offered untouched, the killed
runs recorded as interrupted, no copy left in the tree that no row holds, no temp file and
no held lock.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.legacy_trees import v075_tree, v080_tree, with_parents, write
from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

CLASS = "legacy: SIGKILL during migrate"
TASK = "backups.migrate"
KWARGS = {"remove_originals": True}
EXTRA_SCRIPTS = 240


@dataclass
class Project(harness.Golden):
    """A prepared project and its golden copy; what each original is and where it goes."""

    root: Path
    golden: Path
    offered: dict[str, tuple[str, str]] = field(default_factory=dict)  # rel -> (target, sha)
    kept: dict[str, str] = field(default_factory=dict)                 # rel -> sha
    duration: float = 0.0


def build(root: Path, extra_scripts: int) -> dict[str, str | None]:
    """The project's files; returns each legacy file's target (relative), None if not known."""
    home = root / "home"
    home.mkdir(parents=True)
    (root / "deploy.toml").write_text(with_parents(BASE_CONFIG, ["target/parent1"]))
    found: dict[str, str | None] = {}
    for tree in (v075_tree(root, home), v080_tree(root, home)):
        found.update({rel: e.target for rel, e in tree.items()})
    scripts = "home/.local/.claude-pm/backups/scripts"
    extra = {f"{scripts}/tool{i:03d}_backup_20250714_17{i // 60:02d}{i % 60:02d}":
             f"#!/bin/sh\necho tool {i}\n".encode() * 40 for i in range(extra_scripts)}
    write(root, extra)
    found.update({rel: f"target/bin/{Path(rel).name.split('_backup_')[0]}" for rel in extra})
    return found


def prepare(base: Path, extra_scripts: int = EXTRA_SCRIPTS) -> Project:
    root = base / "p"
    targets = build(root, extra_scripts)
    golden = base / "golden"
    shutil.copytree(root, golden, symlinks=True)
    proj = Project(root, golden)
    for rel, target in targets.items():
        sha = inv.sha256_file(root / rel)
        if target is None:
            proj.kept[rel] = sha
        else:
            proj.offered[rel] = (str(root / target), sha)
    start = time.monotonic()
    done = harness.cli(root, TASK, KWARGS)
    proj.duration = time.monotonic() - start
    if done.code != 0:
        raise AssertionError(f"{TASK} fails without a fault: {done.stderr}")
    found = final_state(proj)
    if found:
        raise AssertionError("the fault-free run breaks the invariants: "
                             + "; ".join(map(str, found)))
    proj.reset()
    return proj


def rows(proj: Project) -> list[dict[str, object]]:
    """The index's change rows (none while a killed first run had not made its tables)."""
    try:
        return inv.read_rows(proj.tree) or []
    except sqlite3.OperationalError as err:
        if "no such table" not in str(err):
            raise
        return []


def runs(proj: Project) -> list[dict[str, object]]:
    try:
        return inv.read_runs(proj.tree)
    except sqlite3.OperationalError as err:
        if "no such table" not in str(err):
            raise
        return []


def imported(proj: Project) -> list[dict[str, object]]:
    return [r for r in rows(proj) if r["state"] == "imported"]


def no_loss(proj: Project) -> list[inv.Violation]:
    """Every original that is gone has a committed copy in the tree holding its bytes; the
    files not offered are untouched."""
    found = []
    copies = {(str(r["target"]), str(r["old_sha256"])): proj.tree / str(r["backup"])
              for r in imported(proj) if not r["pruned"]}
    for rel, (target, sha) in proj.offered.items():
        if (proj.root / rel).exists():
            continue
        copy = copies.get((target, sha))
        if copy is None or not copy.is_file() or inv.sha256_file(copy) != sha:
            size = len((proj.golden / rel).read_bytes())
            found.append(inv.Violation(inv.NO_LOSS, f"{rel} was removed without a verified "
                                       "copy in the tree", size))
    for rel, sha in proj.kept.items():
        path = proj.root / rel
        if not path.is_file() or inv.sha256_file(path) != sha:
            found.append(inv.Violation(inv.NO_LOSS, f"{rel} is not offered but changed",
                                       len((proj.golden / rel).read_bytes())))
    return found


def final_state(proj: Project, killed_runs: tuple[int, ...] = ()) -> list[inv.Violation]:
    """After a run to the end: each offered file imported once and its original removed,
    nothing left over, the killed runs interrupted."""
    found = no_loss(proj)
    rows = imported(proj)
    pairs = [(str(r["target"]), str(r["old_sha256"])) for r in rows]
    for rel, pair in proj.offered.items():
        if pairs.count(pair) != 1:
            found.append(inv.Violation(inv.INDEX, f"{rel} imported {pairs.count(pair)} times"))
        if (proj.root / rel).exists():
            found.append(inv.Violation(inv.CLEAN, f"{rel}: the original is still there"))
    if len(rows) != len(set(proj.offered.values())):
        found.append(inv.Violation(inv.INDEX, f"{len(rows)} imported rows for "
                                   f"{len(proj.offered)} offered files"))
    held = {proj.tree / str(r["backup"]) for r in rows}
    for path in sorted(p for p in proj.tree.rglob("*") if p.is_file()):
        if path.parent != proj.tree and path not in held:
            found.append(inv.Violation(inv.CLEAN, f"{path}: a copy no row holds"))
    for path in held:
        if not path.is_file():
            found.append(inv.Violation(inv.INDEX, f"{path}: an imported row's copy is missing"))
        elif inv.sha256_file(path) != next(str(r["old_sha256"]) for r in rows
                                           if proj.tree / str(r["backup"]) == path):
            found.append(inv.Violation(inv.INDEX, f"{path}: does not match its row"))
    states = {int(str(r["id"])): r["state"] for r in runs(proj)}
    for run in killed_runs:
        if states.get(run) not in ("interrupted", "done"):
            found.append(inv.Violation(inv.CLEAN, f"killed run {run} is {states.get(run)}"))
    found += inv.check_index(proj.tree, allow_running=False)
    found += inv.check_clean(proj.root, proj.tree)
    return found


def phase(proj: Project) -> str:
    """Where the kill landed: before the import run, in it (copies not yet committed),
    after its commit with originals left, or after everything."""
    migrations = [r for r in runs(proj) if r["kind"] == "migrate"]
    if not migrations:
        return "before the import"
    if migrations[-1]["state"] == "running":
        return "between the copies and their commit"
    left = sum((proj.root / rel).exists() for rel in proj.offered)
    if left == len(proj.offered):
        return "between the commit and the removals"
    return "during the removals" if left else "after the removals"


def killed(code: int) -> bool:
    return code in (-signal.SIGKILL, 128 + signal.SIGKILL)


def start_and_kill(proj: Project, delay: float) -> int:
    """Run the migration, wait until it holds the lock, SIGKILL it ``delay`` s later."""
    proc = subprocess.Popen(harness.cli_command(TASK, KWARGS), cwd=proj.root,
                            env=harness.cli_env(proj.root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    harness.holding_lock(proc, proj.tree / "lock", timeout=30)
    time.sleep(delay)
    proc.kill()
    return proc.wait()


def running_runs(proj: Project) -> tuple[int, ...]:
    return tuple(int(str(r["id"])) for r in runs(proj) if r["state"] == "running")


def recover(proj: Project, rng: random.Random, found: list[inv.Violation]) -> None:
    """The same command again (half the time killed part way too), then to the end."""
    killed_runs = running_runs(proj)
    if rng.random() < 0.5:
        code = start_and_kill(proj, rng.uniform(0, proj.duration))
        found += no_loss(proj)
        killed_runs += running_runs(proj) if killed(code) else ()
    again = harness.cli(proj.root, TASK, KWARGS)
    if again.code != 0:
        found.append(inv.Violation(inv.CLEAN, f"the recovery run fails: {again.stderr}"))
        return
    found += final_state(proj, killed_runs)


def random_kill(proj: Project, seed: int) -> tuple[str, list[inv.Violation], bool]:
    rng = random.Random(seed)
    proj.reset()
    code = start_and_kill(proj, rng.uniform(0, proj.duration * 1.1))
    if not killed(code):
        found = final_state(proj) if code == 0 else [
            inv.Violation(inv.CLEAN, f"the run exited {code} without a kill")]
        return "finished", found, False
    where = phase(proj)
    found = no_loss(proj)
    if not inv.lock_is_free(proj.tree):
        found.append(inv.Violation(inv.CLEAN, "the lock outlived the killed run"))
    recover(proj, rng, found)
    return where, found, True


def strace_kill(proj: Project, job: tuple[str, int]) -> tuple[str, list[inv.Violation], bool]:
    """SIGKILL at the ``n``-th ``call`` the migration makes (strace's fault injection)."""
    call, n = job
    proj.reset()
    log = proj.root.parent / f"strace-{call}-{n}.log"
    out = harness.cli(proj.root, TASK, KWARGS, prefix=[
        "strace", "-f", "-qq", "-o", str(log), "-e", f"trace={call}",
        "-e", f"inject={call}:signal=SIGKILL:when={n}"])
    if not killed(out.code):
        return "finished", final_state(proj) if out.code == 0 else [
            inv.Violation(inv.CLEAN, f"exit {out.code}: {out.stderr}")], False
    where = phase(proj)
    found = no_loss(proj)
    recover(proj, random.Random(n), found)
    return where, found, True


def first_removal(proj: Project) -> int:
    """The number of the first ``unlink`` that removes an original (before it: SQLite's
    journal), from a traced fault-free run."""
    proj.reset()
    log = proj.root.parent / "strace-count.log"
    out = harness.cli(proj.root, TASK, KWARGS,
                      prefix=["strace", "-f", "-qq", "-o", str(log), "-e", "trace=unlink"])
    assert out.code == 0, out.stderr
    paths = [m[1] for m in re.finditer(r'unlink\("([^"]+)"', log.read_text())]
    originals = {str(proj.root / rel) for rel in proj.offered}
    proj.reset()
    return next(i for i, path in enumerate(paths, 1) if path in originals)


@dataclass
class Tally:
    kills: int = 0
    problems: list[str] = field(default_factory=list)
    phases: dict[str, int] = field(default_factory=dict)

    def add(self, where: str, found: list[inv.Violation], fired: bool, label: str) -> None:
        if fired:
            self.kills += 1
            self.phases[where] = self.phases.get(where, 0) + 1
            ledger.record(CLASS, found)
        self.problems += [f"{label} ({where}): {v}" for v in found]


def kill_storm(base: Path, kills: int) -> Tally:
    projects = [prepare(base / f"w{i}") for i in range(harness.workers())]
    tally = Tally()
    seed = 0
    while tally.kills < kills and seed < kills * 4:
        jobs = list(range(seed, seed + len(projects) * 2))
        seed += len(jobs)
        for job, (where, found, fired) in zip(
                jobs, harness.run_parallel(projects, jobs, random_kill), strict=True):
            tally.add(where, found, fired, f"seed {job}")
    return tally


def test_sigkill_during_migrate_at_random_points(tmp_path: Path) -> None:
    """At least 12 random kills of `backups.migrate --remove-originals` (and of half the
    reruns): nothing is lost at any point, and the rerun imports each file once and removes
    every original."""
    tally = kill_storm(tmp_path, 12)

    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.kills >= 12, tally.phases


@pytest.mark.slow
def test_sigkill_storm_during_migrate(tmp_path: Path) -> None:
    """100 random kills."""
    tally = kill_storm(tmp_path, 100)

    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.kills >= 100, tally.phases


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace is not installed (apt-get install strace)")
def test_sigkill_between_copy_and_commit_and_between_commit_and_removals(
        tmp_path: Path) -> None:
    """Kills placed by strace: at copies going into the tree (their rows still planned); at
    the journal's removal that would commit them (SQLite's DELETE mode commits by that
    unlink, so the import is not committed); at the first removal of an original (the
    import committed, no original removed yet) and at later ones."""
    proj = prepare(tmp_path / "w0", extra_scripts=60)
    removal = first_removal(proj)
    jobs = [("rename", n) for n in (1, 2, 30, 70)] + \
           [("unlink", removal + k) for k in (-1, 0, 1, 30, 70)]
    tally = Tally()
    for job in jobs:
        where, found, fired = strace_kill(proj, job)
        tally.add(where, found, fired, f"SIGKILL at {job[0]} #{job[1]}")

    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.kills == len(jobs)
    assert tally.phases.get("between the copies and their commit", 0) == 5, tally.phases
    assert tally.phases.get("between the commit and the removals", 0) == 1, tally.phases
    assert tally.phases.get("during the removals", 0) == 3, tally.phases

