"""The backup tree's size after 1,000 deploys of a slowly changing 1 MiB file (issue 13's
bench row), with nothing, compression, dedupe and both, side by side with ``restic``
backing up the same 1,000 versions. Run by hand::

    python bench/tree_size.py [--versions 1000] [--size 1048576] [--out DIR] [--no-restic]

Each mode deploys every version through the library in one session (``deploy.scripts``'
plan, ``deploy.store.apply``; one run per version, as ``invoke deploy.scripts`` would make),
then, with compression, compresses every backup but the newest, as ``backups.prune`` does
once they are older than ``compress_after_days``. Nothing is pruned: like restic's
snapshots, every version is kept. Two workloads:

- ``slow``: each version is the one before with a few hundred bytes changed (five lines
  rewritten at random places);
- ``reverts``: the same, but every fifth deploy puts back the version before the last
  (a revert), so 20% of the backups repeat bytes already in the tree.

Sizes: the tree's files, each inode once (apparent bytes, and the disk blocks ``du``
counts), the index included; restic's repository (format 2, its default ``auto``
compression) the same way.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy import scripts
from deploy.states import RunKind
from deploy.store import Store, compress_backups, compression_due, open_session
from deploy.store import apply as apply_plan

WORDS = ("deploy", "backup", "rollback", "template", "version", "script", "render",
         "framework", "index", "tree", "compress", "verify", "prune", "restore", "target",
         "source", "config", "memory", "agent", "ticket")


def first_version(size: int, rng: random.Random) -> list[bytes]:
    """Lines of shell-like text, about ``size`` bytes in all."""
    lines, total = [], 0
    while total < size:
        line = ("echo " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
                + f" {rng.randint(0, 99999)}\n").encode()
        lines.append(line)
        total += len(line)
    return lines


def versions(count: int, size: int, workload: str, seed: int = 7) -> list[bytes]:
    """The bytes deployed, in order: ``count`` deploys of the workload."""
    rng = random.Random(seed)
    lines = first_version(size, rng)
    made: list[bytes] = []
    for k in range(count):
        if workload == "reverts" and k % 5 == 4 and len(made) >= 2:
            made.append(made[-2])
            continue
        for _ in range(5):  # a few hundred bytes: five lines rewritten
            i = rng.randrange(len(lines))
            lines[i] = (f"echo changed in {k} " + " ".join(
                rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + "\n").encode()
        made.append(b"".join(lines))
    return made


def disk(tree: Path) -> tuple[int, int, int]:
    """(apparent bytes, bytes in disk blocks, files) under ``tree``, each inode once."""
    seen: set[tuple[int, int]] = set()
    apparent = blocks = files = 0
    for dirpath, _dirs, names in os.walk(tree):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            files += 1
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            apparent += st.st_size
            blocks += st.st_blocks * 512
    return apparent, blocks, files


def run_mode(root: Path, data: list[bytes], *, compression: bool, dedupe: bool
             ) -> tuple[tuple[int, int, int], float]:
    """Deploy every version into a fresh tree; returns its size and the seconds it took."""
    src, target = root / "bin", root / "target"
    src.mkdir(parents=True)
    store = Store(root / "state")
    started = time.perf_counter()
    with open_session(store, command="bench tree_size", actor="bench") as sess:
        sess.dedupe = dedupe
        for blob in data:
            (src / "big").write_bytes(blob)
            apply_plan(sess, scripts.plan(src, target), kind=RunKind.DEPLOY)
        if compression:
            due = compression_due(sess.index.changes.backups(), 0)
            compress_backups(sess, due)
    took = time.perf_counter() - started
    return disk(store.tree), took


def run_restic(root: Path, data: list[bytes]) -> tuple[tuple[int, int, int], float]:
    repo, work = root / "repo", root / "work"
    work.mkdir(parents=True)
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo),
           "RESTIC_CACHE_DIR": str(root / "cache")}
    subprocess.run(["restic", "init", "--repository-version", "2", "-q"], env=env, check=True)
    started = time.perf_counter()
    for blob in data:
        (work / "big").write_bytes(blob)
        subprocess.run(["restic", "backup", "-q", str(work)], env=env,
                       check=True)
    took = time.perf_counter() - started
    return disk(repo), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--workload", choices=("slow", "reverts", "both"), default="both")
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (removed)")
    parser.add_argument("--no-restic", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tree-size-", dir=args.out))
    workloads = ("slow", "reverts") if args.workload == "both" else (args.workload,)
    modes = {"nothing": (False, False), "compression": (True, False),
             "dedupe": (False, True), "both": (True, True)}
    try:
        for workload in workloads:
            data = versions(args.versions, args.size, workload)
            logical = sum(len(b) for b in data[:-1])  # the backups hold every old version
            print(f"\nworkload {workload}: {len(data)} deploys of a {args.size} byte file; "
                  f"{logical} bytes backed up ({len(set(data))} distinct versions)")
            print(f"{'mode':<12} {'apparent bytes':>15} {'disk bytes':>13} {'files':>6} "
                  f"{'ratio':>7} {'vs nothing':>10} {'seconds':>8}")
            sizes: dict[str, int] = {}
            results = []
            for name, (compression, dedupe) in modes.items():
                root = base / f"{workload}-{name}"
                size, took = run_mode(root, data, compression=compression, dedupe=dedupe)
                results.append((name, size, took))
                shutil.rmtree(root)
            if not args.no_restic and shutil.which("restic"):
                root = base / f"{workload}-restic"
                size, took = run_restic(root, data)
                results.append(("restic", size, took))
                shutil.rmtree(root)
            for name, (apparent, blocks, files), took in results:
                sizes[name] = blocks
                print(f"{name:<12} {apparent:>15} {blocks:>13} {files:>6} "
                      f"{logical / max(blocks, 1):>6.1f}x "
                      f"{blocks / max(sizes['nothing'], 1):>10.4f} {took:>8.1f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
