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
- the *durable floor* (``floor.py``): a plain-Python subprocess doing the least a
  durable, backed-up deploy can do (copy each old file aside and write each new one via
  a temp file, fsync in batches, rename, fsync the folders); no index, no lock, no hash;
- the *issue-2 loop* (``copy_loop.py``): the old code's shape, ``shutil.copy2`` aside
  and over, no fsync;
- ``invoke --list`` of a one-task ``tasks.py``: the cost of starting Invoke at all;
- ``cp`` of a file twice (aside, then over).

Timed commands run from a small helper process (``spawner.py``) so each child's peak RSS
is its own; before each one it calls ``sync()`` so the writeback a previous step
left behind is not billed to the next one. With ``--profile`` every row that misses its
target runs its toolkit command once more under ``cProfile`` and the top costs are printed.

Stdlib only (plus the project itself, for the index schema of row 5). This file holds
the rows, the table and the command line; ``harness.py`` the measuring and the scratch
projects; ``workloads.py`` what each row runs.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    MIB,
    REPO,
    BenchError,
    Row,
    Sample,
    Scratch,
    child_env,
    start_spawner,
)
from workloads import (
    AnsibleCase,
    BigFileCase,
    BigIndexCase,
    BigZstdCase,
    ListCase,
    ReleaseCase,
    ScriptsCase,
    VersionsCase,
)


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
        Row("2i", f"claude-pm-deploy deploy.scripts, {s.scripts:,} unchanged", 1.5, one),
        Row("3", f"rollback.scripts of that run ({s.scripts:,})", 1.5, floor),
        Row("4", f"deploy release {s.release_scripts}+{s.release_templates}+9", 2.0, floor),
        Row("4b", "deploy release, unchanged", 1.5, one),
        Row("4c", "rollback.release of that release", 2.0, floor),
        Row("5a", f"backups.status --json, {s.backups:,} backups", 2.0, one),
        Row("5b", f"rollback.scripts --name --dry-run, {s.backups:,}", 2.0, one),
        Row("5c", f"history --json (page 2), {s.backups:,} backups", 2.0, one),
        Row("6", f"deploy.scripts, one {big} file", 2.5, "cp twice", rss_limit_mib=64),
        Row("6z", f"rollback.scripts --to, one {big} .zst", 2.5, "cp + zstd -d",
            rss_limit_mib=64),
        Row("7", "invoke --list of the project", 1.2, one),
        Row("7i", "claude-pm-deploy --list", 1.2, one),
        Row("8", f"deploy.scripts {s.ansible} changed vs ansible copy", None, "ansible copy"),
        Row("9", "versions.bulk, all 9 version files", None, floor),
    ]
    return {r.key: r for r in rows}


def select_rows(all_rows: dict[str, Row], wanted: str | None) -> dict[str, Row]:
    if not wanted:
        return dict(all_rows)
    keys = [w.strip() for w in wanted.split(",") if w.strip()]
    chosen = {}
    for key in keys:
        matched = [k for k in all_rows if k == key or (k.rstrip("abc") == key)]
        if not matched:
            raise SystemExit(f"error: no row {key!r}; rows are 1-9 (2i, 7i: the installed "
                             "command)")
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
        (("1", "1b", "2", "2i", "3"), lambda: ScriptsCase(scratch, sizes.scripts, 4096)),
        (("4", "4b", "4c"), lambda: ReleaseCase(scratch, sizes.release_scripts,
                                                sizes.release_templates)),
        (("5a", "5b", "5c"), lambda: BigIndexCase(scratch, sizes.backups)),
        (("6",), lambda: BigFileCase(scratch, sizes.big_file)),
        (("6z",), lambda: BigZstdCase(scratch, sizes.big_file)),
        (("7", "7i"), lambda: ListCase(scratch)),
        (("8",), lambda: AnsibleCase(scratch, sizes.ansible)),
        (("9",), lambda: VersionsCase(scratch)),
    ]
    listing = project_tasks(scratch) if rows.keys() & {"4", "4b", "4c"} else ""
    cases = []
    if scratch.installed is None:
        for k in ("2i", "7i"):
            if k in rows:
                rows[k].note = "skipped: claude-pm-deploy not installed (pip install .)"
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
def warm_bytecode(scratch: Scratch) -> None:
    """Compile the toolkit as ``pip install`` does and warm the one-task baseline's cache.

    The timed children run with Python's bytecode cache on (see ``harness.child_env``);
    this makes the first timed run of each side read bytecode like every later one.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "deploy"),
                    str(REPO / "deploy_tasks"), str(REPO / "tasks.py")],
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)
    scratch.list_one_task()


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
    start_spawner()
    try:
        scratch = Scratch(root, root / "profiles")
        (root / "profiles").mkdir()
        warm_bytecode(scratch)
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
