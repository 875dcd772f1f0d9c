#!/usr/bin/env python3
"""Retention at scale (issue 13): prune, verify and status over 100,000 indexed backups.

    python bench/retention.py [--backups N] [--targets T] [--dir DIR] [--keep]

Builds the tree with the library, not with N CLI runs: N backup files of 256 bytes
(``T`` scripts, N/T runs each, one change per script per run, spread over 60 days so that
age and count both remove some) and their index rows in one transaction. Then times the
real CLI as a maintainer runs it, each command against a same-run baseline:

- ``backups.status``: against a plain Python start that opens the index read-only and
  counts the backups per category (the least a status can do);
- ``backups.verify`` (re-hashes all N): against ``sha256sum`` of the same N files
  (``find -type f -print0 | xargs -0 sha256sum``);
- ``backups.prune --dry-run --json`` (a verdict for each of N): against a plain Python
  start that reads every change row of the index (the data retention decides from);
- ``backups.prune`` (removing what it judged, durably): against ``rm`` of the same files
  (``xargs -0 rm``), on a copy of the tree made before.

Whole-process wall time, one sample each (they are long); ``sync()`` before each. The
ratio is toolkit / baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAY = 86400.0
CONFIG = """\
[tool.deploy]
state_dir = "state"
[tool.deploy.scripts]
source = "bin"
target = "target/bin"
[tool.deploy.versions]
dir = "versions"
[tool.deploy.framework]
template = "tpl/CLAUDE.md"
install_to = "target/framework/CLAUDE.md"
"""


def build(root: Path, backups: int, targets: int) -> list[Path]:
    """The project and its tree: ``backups`` files and rows; returns the files."""
    from datetime import datetime

    from deploy.states import ChangeState, RunKind, RunState
    from deploy.store import Index, Store

    (root / "bin").mkdir(parents=True)
    (root / "home").mkdir()
    (root / "target" / "bin").mkdir(parents=True)
    (root / "deploy.toml").write_text(CONFIG)
    store = Store(root / "state", project=str(root / "deploy.toml"))
    store.state_dir.mkdir(mode=0o700)
    store.ensure_tree()
    folder = store.tree / "scripts"
    runs = backups // targets
    now = time.time()
    files = []
    index = Index(store.index_path)
    with index.transaction():
        for n in range(runs):
            ts = now - 60 * DAY * (runs - n) / runs
            stamp = datetime.fromtimestamp(ts)
            started = stamp.astimezone().isoformat(timespec="milliseconds")
            run = index.runs.add(RunKind.DEPLOY, "bench", "bench", 1, started, ["scripts"],
                                 project=store.project)
            for t in range(targets):
                name = f"tool{t:04d}_backup_{stamp:%Y%m%d_%H%M%S}"
                data = f"#!/bin/sh\necho tool {t} run {n}\n".encode().ljust(256, b"#")
                path = folder / name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, data)
                os.close(fd)
                files.append(path)
                index.changes.add(run=run, category="scripts", key=f"tool{t:04d}",
                                  target=str(root / "target" / "bin" / f"tool{t:04d}"),
                                  action="update", backup=f"scripts/{name}",
                                  old_sha256=hashlib.sha256(data).hexdigest(), old_size=256,
                                  old_mode=0o755, created=started, created_ts=ts,
                                  state=ChangeState.APPLIED,
                                  new_sha256=hashlib.sha256(data + b"x").hexdigest(),
                                  new_size=257, new_mode=0o755)
            index.runs.finish(run, RunState.DONE, started)
    index.close()
    os.sync()
    return files


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:6]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backups", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=1_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-retention-", dir=args.dir))
    root = scratch / "p"
    try:
        t0 = time.perf_counter()
        files = build(root, args.backups, args.targets)
        print(f"built {len(files)} backups in {time.perf_counter() - t0:.1f} s under {root}")
        env = {**os.environ, "DEPLOY_CONFIG": str(root / "deploy.toml"),
               "HOME": str(root / "home")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cli = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]
        tree = root / "state" / "backups"
        rows = []

        status, _ = timed([*cli, "backups.status"], env, root)
        count = ("import sqlite3,sys; db=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',"
                 "uri=True); print(db.execute(\"SELECT category, count(*) FROM changes "
                 "WHERE backup IS NOT NULL AND pruned = 0 GROUP BY category\").fetchall())")
        floor, _ = timed([sys.executable, "-c", count, str(tree / "index.sqlite")], env, root)
        rows.append(("backups.status", status, "python opens the index, counts per category",
                     floor))

        verify, _ = timed([*cli, "backups.verify"], env, root)
        sums, _ = timed(["sh", "-c", "find scripts -type f -print0 | xargs -0 sha256sum "
                         ">/dev/null"], env, tree)
        rows.append((f"backups.verify ({len(files)} re-hashed)", verify,
                     "find, xargs sha256sum of the same files", sums))

        dry, out = timed([*cli, "backups.prune", "--dry-run", "--json"], env, root)
        read = ("import sqlite3,sys; db=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',"
                "uri=True); rows=db.execute('SELECT * FROM changes').fetchall(); "
                "print(len(rows))")
        walk, _ = timed([sys.executable, "-c", read, str(tree / "index.sqlite")], env, root)
        doomed = [b["path"] for b in json.loads(out)["backups"] if b["action"] == "remove"]
        rows.append((f"backups.prune --dry-run --json ({len(files)} verdicts)", dry,
                     "python reads every row of the index", walk))

        copy = scratch / "copy"
        shutil.copytree(root, copy, symlinks=True)
        prune, _ = timed([*cli, "backups.prune", "--json"], env, root)
        listing = scratch / "doomed"
        listing.write_bytes(b"\0".join(os.fsencode(p.replace(str(root), str(copy)))
                                       for p in doomed))
        rm, _ = timed(["sh", "-c", f"xargs -0 rm < {listing}"], env, copy)
        rows.append((f"backups.prune ({len(doomed)} removed)", prune,
                     "xargs rm of the same files", rm))

        print("\n| command | toolkit | baseline | ratio |\n|---|---|---|---|")
        for what, took, base_what, base in rows:
            print(f"| {what} | {took:.2f} s | {base_what}: {base:.2f} s | "
                  f"**{took / base:.1f}** |")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
