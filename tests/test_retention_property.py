"""A property of retention (issue 13): over random histories of deploys, bumps, rollbacks,
failed and killed runs and kept runs, a prune keeps every promise it makes.

After ``backups.prune``, on a copy of the project:

- every step-back rollback the prune promises (``rollback.scripts`` and
  ``rollback.versions``, as many steps in a row as the category's
  ``max_backups_per_type``, or one when ``retention_days`` is 0) that worked before the
  prune works after it, step for step, leaving the same bytes in every target;
- every kept run's backups are all still there and hash to what the index says, and
  ``rollback.release --run N`` of a kept run does after the prune what it did before;
- ``rollback.release`` (the latest not-undone run) does after the prune what it did before;
- every backup the verdicts (``--dry-run --json``) keep is still there;
- ``backups.verify`` passes.

The runs are real task bodies called in process (``tests/reliability/harness.run_task``)
on real files and SQLite; a failed run is a real ``EIO`` at its first target rename, a
killed run a forked child that exits there without cleaning up (``os._exit``). Ten
histories by default; ``--runslow`` draws 150.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE_CONFIG
from tests.reliability import harness
from tests.reliability import invariants as inv
from tests.reliability.faults import Injector

OPS = ("deploy_a", "deploy_b", "deploy_ab", "bump", "rollback_scripts", "rollback_versions",
       "fail", "kill", "keep")


class History:
    """One project and the counter that gives every deploy new bytes."""

    def __init__(self, root: Path, max_backups: int, days: int) -> None:
        self.root = root
        self.version = 0
        if root.exists():
            shutil.rmtree(root)
        harness.write_files(root, {
            "deploy.toml": BASE_CONFIG + f"[tool.deploy.backup]\nmax_backups_per_type = "
                                         f"{max_backups}\nretention_days = {days}\n",
            "versions/MEMORY_VERSION": "001\n", "tpl/CLAUDE.md": "# x\n"})
        (root / "bin").mkdir()
        (root / "home").mkdir()

    def run(self, task: str, **kwargs: Any) -> harness.Outcome:
        out = harness.run_task(self.root, task, kwargs)
        assert out.crash is None, out.stderr
        return out

    def sources(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.version += 1
            harness.write_files(self.root, {f"bin/{name}": f"#!/bin/sh\necho {name} "
                                                            f"{self.version}\n"})

    def runs(self) -> list[dict[str, object]]:
        try:
            return inv.read_runs(self.root / "state" / "backups")
        except (sqlite3.OperationalError, FileNotFoundError):
            return []

    def apply(self, op: str, pick: int) -> None:
        if op.startswith("deploy_"):
            self.sources(tuple(op.removeprefix("deploy_")))
            self.run("deploy.scripts")
        elif op == "bump":
            self.run("versions.bump", subsystem="memory")
        elif op.startswith("rollback_"):
            self.run(op.replace("_", "."))
        elif op == "fail":
            self.sources(("a",))
            # One changed target: the 1st rename puts its backup in place, the 2nd the target
            # (when a rollback removed the targets, the run creates them and may get through).
            with Injector("os.replace", 2, errno.EIO).active():
                self.run("deploy.scripts")
        elif op == "kill":
            self.sources(("a",))
            self.killed_at_target_rename()
        elif op == "keep":
            runs = self.runs()
            if runs:
                self.run("history.keep", run=int(str(runs[pick % len(runs)]["id"])))

    def killed_at_target_rename(self) -> None:
        """``deploy.scripts`` in a forked child that dies at its target's rename, as a
        SIGKILL would leave it: no restore, no run end, the lock let go by the kernel."""
        pid = os.fork()
        if pid == 0:  # the child
            calls = 0
            real = os.replace

            def dying(*args: Any, **kwargs: Any) -> None:
                nonlocal calls
                calls += 1
                if calls == 2:
                    os._exit(137)
                real(*args, **kwargs)

            os.replace = dying
            try:
                harness.run_task(self.root, "deploy.scripts")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def targets(root: Path) -> inv.Files:
    return {k: v for k, v in inv.file_states(root).items()
            if k.startswith(("target/", "versions/"))}


def step_back(hist: History, category: str, steps: int) -> list[tuple[int, inv.Files]]:
    """Run ``rollback.<category>`` up to ``steps`` times; each outcome with the targets."""
    found = []
    for _ in range(steps):
        out = hist.run(f"rollback.{category}")
        found.append((out.code, targets(hist.root)))
        if out.code != 0 or "nothing to roll back" in out.stdout:
            break
    return found


def kept_backups(root: Path) -> dict[int, list[dict[str, object]]]:
    """kept run -> the rows of it that hold a backup."""
    tree = root / "state" / "backups"
    runs = [r for r in inv.read_runs(tree) if r.get("kept")]
    rows = inv.read_rows(tree) or []
    return {int(str(r["id"])): [c for c in rows if c["run"] == r["id"] and c["backup"]
                                and not c["pruned"]
                                and c["state"] in ("applied", "backed_up", "reverted",
                                                   "imported")] for r in runs}


def restore(copy: Path, root: Path) -> None:
    shutil.rmtree(root)
    shutil.copytree(copy, root, symlinks=True)


@pytest.mark.parametrize("n", [pytest.param(10, id="10-histories"),
                               pytest.param(150, id="150-histories", marks=pytest.mark.slow)])
def test_prune_keeps_every_promised_rollback(tmp_path_factory: pytest.TempPathFactory,
                                             n: int) -> None:
    """See the module's docstring."""

    @settings(max_examples=n, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(ops=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 50)), min_size=2,
                        max_size=12),
           max_backups=st.integers(1, 3), days=st.sampled_from([30, 30, 0]))
    # Histories where the count alone would break a promised step (a rollback's backup
    # uses up the count of the target), a kept run and a failure among them: every run.
    @example(ops=[("deploy_a", 0), ("rollback_scripts", 0), ("deploy_a", 0),
                  ("deploy_a", 0)], max_backups=2, days=30)
    @example(ops=[("deploy_ab", 0), ("keep", 1), ("deploy_a", 0), ("fail", 0),
                  ("rollback_scripts", 0), ("deploy_b", 0), ("bump", 0), ("bump", 0),
                  ("rollback_versions", 0), ("bump", 0)], max_backups=3, days=30)
    @example(ops=[("deploy_a", 0), ("kill", 0), ("deploy_a", 0), ("rollback_scripts", 0),
                  ("deploy_ab", 0)], max_backups=2, days=0)
    def history(ops: list[tuple[str, int]], max_backups: int, days: int) -> None:
        base = tmp_path_factory.mktemp("h")
        hist = History(base / "p", max_backups, days)
        for op, pick in [("deploy_ab", 0), *ops]:
            hist.apply(op, pick)
        before = base / "before"
        shutil.copytree(hist.root, before, symlinks=True)
        kept_before = kept_backups(before) if (before / "state").exists() else {}

        judged = hist.run("backups.prune", dry_run=True, json_=True)
        pruned = hist.run("backups.prune")
        after = base / "after"
        shutil.copytree(hist.root, after, symlinks=True)

        assert pruned.code == 0, pruned.stderr
        keep = {b["id"] for b in json.loads(judged.stdout)["backups"] if b["action"] == "keep"} \
            if judged.stdout.strip() else set()
        left = {int(str(r["seq"])) for r in inv.read_rows(after / "state" / "backups") or []
                if r["backup"] and not r["pruned"]}
        assert keep <= left, f"kept by the verdicts but gone: {sorted(keep - left)}"
        assert hist.run("backups.verify").code == 0
        tree = after / "state" / "backups"
        still = {int(str(r["seq"])): r for r in inv.read_rows(tree) or []}
        for run, rows in kept_before.items():
            for row in rows:
                now = still[int(str(row["seq"]))]
                assert not now["pruned"], f"kept run {run} lost backup {row['seq']}"
                assert inv.sha256_file(tree / str(now["backup"])) == now["old_sha256"]
        steps = max_backups if days else 1
        for category in ("scripts", "versions"):
            restore(before, hist.root)
            promised = step_back(hist, category, steps)
            restore(after, hist.root)
            kept = step_back(hist, category, steps)
            for i, (code, files) in enumerate(promised):
                if code != 0:
                    break
                assert kept[i] == (code, files), f"step {i + 1} of rollback.{category}"
        restore(before, hist.root)
        latest = hist.run("rollback.release")
        was = targets(hist.root)
        restore(after, hist.root)
        now = hist.run("rollback.release")
        if latest.code == 0:
            assert (now.code, targets(hist.root)) == (0, was), now.stderr
        for run in list(kept_before)[:2]:
            restore(before, hist.root)
            promised_release = hist.run("rollback.release", run=run)
            was = targets(hist.root)
            restore(after, hist.root)
            now_release = hist.run("rollback.release", run=run)
            if promised_release.code == 0:
                assert now_release.code == 0, now_release.stderr
                assert targets(hist.root) == was

    history()
