"""SIGKILL during the compression ``backups.prune`` does (issue 13, "Compression"), through
the real CLI.

A project holds 42 backups due for compression (six scripts, eight versions each; the
newest of each stays plain). A prune is killed at random moments after it took the lock
(8; 40 with ``--runslow``) and, with strace, at the renames that put a ``.zst`` in place
and at the unlinks around the commit that records one (SQLite's DELETE journal commits by
an unlink; the next unlink removes the plain file), so the two windows of the durable
order are hit every time: a ``.zst`` the index does not know yet beside its plain file,
and a plain file left beside the ``.zst`` the index records.

After each kill nothing may be lost: every backup the index vouched for before is still
vouched for and its file (plain or ``.zst``, as the index says) holds its bytes; verify
finds nothing worse than orphans (the leftovers). Then the next prune must succeed, and
``backups.verify`` exit 0: every due backup compressed, no leftover, no temp file, the
lock free.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

CLASS = "compress: SIGKILL during prune's compression"
CONFIG = BASE_CONFIG + """
[tool.deploy.backup]
compression_enabled = true
compress_after_days = 0
"""
SCRIPTS, VERSIONS = 6, 8


def body(name: str, k: int) -> bytes:
    return b"#!/bin/sh\n" + b"".join(b"echo %s line %d version %d\n" % (name.encode(), i, k)
                                     for i in range(1500))


def prepare(root: Path) -> dict[int, str]:
    """The golden project: every version deployed; the backups it vouches for, by seq."""
    root.mkdir(parents=True)
    (root / "home").mkdir()
    harness.write_files(root, {"deploy.toml": CONFIG})
    for k in range(VERSIONS):
        harness.write_files(root, {f"bin/s{i}": body(f"s{i}", k) for i in range(SCRIPTS)})
        harness.must(harness.cli(root, "deploy.scripts"), f"deploy {k}")
    return vouched(root / "state" / "backups")


def vouched(tree: Path) -> dict[int, str]:
    return {int(str(r["seq"])): str(r["old_sha256"]) for r in inv.read_rows(tree) or ()
            if r["backup"] and not r["pruned"] and r["state"] in inv.BACKED_STATES}


def start(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(harness.cli_command("backups.prune"), cwd=root,
                            env=harness.cli_env(root), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def after_kill(root: Path, golden: dict[int, str]) -> tuple[str, list[inv.Violation]]:
    """Check nothing is lost, then prune again and verify; returns where the kill left the
    tree (how many compressed) and what was wrong."""
    tree = root / "state" / "backups"
    found: list[inv.Violation] = []
    now = vouched(tree)
    if now != golden:
        lost = sorted(set(golden) - set(now))
        found.append(inv.Violation(inv.NO_LOSS, f"rows no longer vouched for: {lost}"))
    found += inv.check_index(tree)
    compressed = sum(1 for r in inv.read_rows(tree) or () if r.get("compressed"))
    early = harness.cli(root, "backups.verify", {"json_": True})
    kinds = {p["kind"] for p in json.loads(early.stdout or "{}").get("problems", [])}
    if kinds - {"orphan"}:
        found.append(inv.Violation(inv.INDEX, f"verify right after the kill: {kinds}: "
                                   f"{early.stdout[:400]}"))
    again = harness.cli(root, "backups.prune")
    if again.code != 0:
        found.append(inv.Violation(inv.CLEAN, f"the next prune exit {again.code}: "
                                   f"{again.stderr}"))
    check = harness.cli(root, "backups.verify")
    if check.code != 0:
        found.append(inv.Violation(inv.INDEX, f"verify after the next prune exit "
                                   f"{check.code}: {check.stdout[:400]}"))
    rows = inv.read_rows(tree) or ()
    due = SCRIPTS * (VERSIONS - 2)
    if sum(1 for r in rows if r.get("compressed")) != due:
        found.append(inv.Violation(inv.INDEX, "not every due backup is compressed after the "
                                   "next prune"))
    if vouched(tree) != golden:
        found.append(inv.Violation(inv.NO_LOSS, "rows lost by the next prune"))
    found += inv.check_index(tree, allow_running=False) + inv.check_clean(root, tree)
    return f"{compressed} compressed", found


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    root = tmp_path_factory.mktemp("compress-golden") / "p"
    return root, prepare(root)


def copy(golden_root: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(golden_root, root, symlinks=True)


@pytest.mark.parametrize("kills", [pytest.param(8, id="8"),
                                   pytest.param(40, id="40", marks=pytest.mark.slow)])
def test_sigkill_at_random_points_of_compression(tmp_path: Path, kills: int,
                                                 golden: tuple[Path, dict[int, str]]) -> None:
    """Random kills after the prune took the lock: nothing lost, and after the next prune
    verify is clean with every due backup compressed."""
    golden_root, rows = golden
    root = tmp_path / "p"
    copy(golden_root, root)
    proc = start(root)
    held = harness.holding_lock(proc, root / "state" / "backups" / "lock")
    _, err = proc.communicate()
    longest = time.monotonic() - held
    assert proc.returncode == 0, err
    rng = random.Random(31)
    problems: list[str] = []
    outcomes: dict[str, int] = {}
    fired = 0
    for attempt in range(kills * 3):
        if fired >= kills:
            break
        copy(golden_root, root)
        proc = start(root)
        harness.holding_lock(proc, root / "state" / "backups" / "lock")
        time.sleep(rng.uniform(0, longest))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            continue  # it finished first: not a fault
        fired += 1
        where, found = after_kill(root, rows)
        outcomes[where] = outcomes.get(where, 0) + 1
        ledger.record(CLASS, found)
        problems += [f"kill {attempt} ({where}): {v}" for v in found]

    print(f"SIGKILL during compression: {outcomes}")
    assert problems == [], "\n".join(problems[:10])
    assert fired >= kills, f"only {fired} of {kills} kills landed before the prune ended"


def leftovers(tree: Path) -> tuple[int, int]:
    """(``.zst`` files no row records as compressed, plain files beside a recorded ``.zst``)."""
    unknown = plain = 0
    for row in inv.read_rows(tree) or ():
        if not row["backup"] or row["pruned"]:
            continue
        zst, name = tree / f"{row['backup']}.zst", tree / str(row["backup"])
        if not row.get("compressed") and zst.exists():
            unknown += 1
        if row.get("compressed") and name.exists():
            plain += 1
    return unknown, plain


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="strace is not installed (apt-get install strace)")
def test_sigkill_in_each_window_of_the_durable_order(tmp_path: Path,
                                                     golden: tuple[Path, dict[int, str]]) -> None:
    """Kills placed by strace at the n-th rename (a .zst going into place) and the n-th
    unlink (the journal's, which commits a compression, or a plain file's, which follows
    it): both windows are hit, and each leaves nothing lost and a tree the next prune
    tidies."""
    golden_root, rows = golden
    root = tmp_path / "p"
    problems: list[str] = []
    windows = {"zst unknown to the index": 0, "plain left beside its zst": 0}
    jobs = [("rename", n) for n in (1, 2, 17)] + [("unlink", n) for n in (1, 2, 3, 4, 5, 30)]
    for call, n in jobs:
        copy(golden_root, root)
        log = tmp_path / f"strace-{call}-{n}.log"
        out = harness.cli(root, "backups.prune", prefix=[
            "strace", "-f", "-qq", "-o", str(log), "-e", f"trace={call}",
            "-e", f"inject={call}:signal=SIGKILL:when={n}"])
        assert out.code in (-signal.SIGKILL, 128 + signal.SIGKILL), (call, n, out)
        unknown, plain = leftovers(root / "state" / "backups")
        if unknown:
            windows["zst unknown to the index"] += 1
        if plain:
            windows["plain left beside its zst"] += 1
        _where, found = after_kill(root, rows)
        ledger.record(CLASS, found)
        problems += [f"SIGKILL at {call} #{n}: {v}" for v in found]

    assert problems == [], "\n".join(problems[:10])
    assert windows["plain left beside its zst"] >= 1, windows
    assert windows["zst unknown to the index"] >= 1, windows
