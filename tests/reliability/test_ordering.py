"""The durable order, audited from an strace log of a real deploy: for each target, its
backup is fsynced, renamed into place (or, deduplicated, hard-linked to an earlier backup
of its bytes), its folder fsynced and the index committed before the target's rename; the
target's folder is fsynced after it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

CALLS = "openat,write,fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat"
LINE = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")


def events(log: Path) -> list[tuple[str, str]]:
    """(syscall, arguments) of each successful call, in order."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if match and int(match.group(3)) >= 0:
            found.append((match.group(1), match.group(2)))
    return found


def first(evs: list[tuple[str, str]], pred: object, start: int = 0, stop: int | None = None
          ) -> int | None:
    stop = len(evs) if stop is None else stop
    for i in range(start, stop):
        if pred(*evs[i]):  # type: ignore[operator]
            return i
    return None


def last(evs: list[tuple[str, str]], pred: object, stop: int) -> int | None:
    for i in range(stop - 1, -1, -1):
        if pred(*evs[i]):  # type: ignore[operator]
            return i
    return None


def fd_path(args: str) -> str:
    match = re.match(r"\d+<(.*?)>", args)
    return match.group(1) if match else ""


def audit(evs: list[tuple[str, str]], rows: list[dict[str, object]], tree: Path
          ) -> list[inv.Violation]:
    found = []
    journal = str(tree / "index.sqlite-journal")

    def is_commit(call: str, args: str) -> bool:
        return call in ("unlink", "unlinkat") and journal in args

    for row in rows:
        target = str(row["target"])
        put = last(evs, lambda c, a, t=target: c in ("rename", "renameat", "renameat2", "link",
                                                     "linkat") and a.rstrip().endswith(f'"{t}"'),
                   len(evs))
        if put is None:
            found.append(inv.Violation("ordering", f"{target}: no rename into place seen"))
            continue
        tmp_sync = last(evs, lambda c, a, t=target: c == "fsync" and
                        fd_path(a).startswith(str(Path(t).parent / f".{Path(t).name}")), put)
        if tmp_sync is None:
            found.append(inv.Violation("ordering", f"{target}: temp not fsynced before rename"))
        after = first(evs, lambda c, a, t=target: c == "fsync" and
                      fd_path(a) == str(Path(t).parent), put)
        if after is None:
            found.append(inv.Violation("ordering", f"{target}: folder not fsynced after rename"))
        if not row["backup"]:
            continue
        backup = tree / str(row["backup"])
        renamed = first(evs, lambda c, a, b=str(backup): c.startswith("rename")
                        and a.rstrip().endswith(f'"{b}"'))
        synced = first(evs, lambda c, a, b=backup: c == "fsync"
                       and fd_path(a).startswith(str(b.parent / f".{b.name}")))
        linked = first(evs, lambda c, a, b=str(backup): c in ("link", "linkat")
                       and a.rstrip().endswith(f'"{b}"'))
        if renamed is None and synced is None and linked is not None:
            # Dedupe: the backup is a hard link to an earlier backup of the same bytes,
            # made durable (fsynced, renamed, its folder fsynced) by the run that wrote it;
            # the link is this run's entry, and its folder fsync and the commit must follow.
            renamed = synced = linked
        folder = first(evs, lambda c, a, b=backup: c == "fsync" and fd_path(a) == str(b.parent),
                       renamed or 0)
        commit = first(evs, is_commit, folder or 0)
        for name, at in (("backup fsync", synced), ("backup rename", renamed),
                         ("backup folder fsync", folder), ("index commit", commit)):
            if at is None or at > put:
                found.append(inv.Violation("ordering", f"{target}: {name} "
                                           f"{'missing' if at is None else 'after'} the "
                                           "target's rename"))
        if synced is not None and renamed is not None and synced > renamed:
            found.append(inv.Violation("ordering", f"{backup}: renamed before its fsync"))
    return found


@pytest.mark.parametrize("scenario", ["deploy.scripts", "rollback.scripts",
                                      harness.LARGE_SCRIPTS.name])
def test_durable_order(scenario: str, tmp_path: Path) -> None:
    """Backup fsync, backup rename, backup folder fsync and index commit precede every
    target rename; the target folder fsync follows it (also on the large-file path, whose
    hashing runs on a second thread)."""
    chosen = harness.LARGE_SCRIPTS if scenario == harness.LARGE_SCRIPTS.name \
        else harness.BY_NAME[scenario]
    prep = harness.prepare(chosen, tmp_path)
    log = tmp_path / "trace.log"

    out = harness.cli(prep.root, prep.scenario.task, prep.scenario.kwargs,
                      prefix=["strace", "-f", "-qq", "-y", "-o", str(log), "-e",
                              f"trace={CALLS}"])

    assert out.code == 0, out.stderr
    rows = [r for r in inv.read_rows(prep.tree) or ()
            if int(str(r["run"])) > prep.last_run and r["state"] == "applied"
            and r["new_sha256"] is not None]
    assert rows, "the traced run changed nothing"
    found = audit(events(log), rows, prep.tree)
    ledger.record("ordering audit (strace log)", found, injected=len(rows))
    assert not found, "\n".join(map(str, found))
