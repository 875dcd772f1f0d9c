"""The clock lies: real runs under ``faketime`` (libfaketime, Debian's package), through the
CLI, for the traps RELIABILITY.md names: two runs in one second, the hour a DST fall-back
repeats, a clock stepped back, and one jumped a year ahead.

Each command starts at the instant given (in UTC) with its clock running, so two commands
given one instant both believe they ran in the same second. Order must come from the
index's sequence numbers, never from a time or a name: every step-back rollback restores
the bytes the run before it deployed, whatever the clock said.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NO_FRAMEWORK_CONFIG, REPO, Project

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None,
                                reason="faketime is not installed (apt-get install faketime)")

NAME = re.compile(r"tool_backup_(\d{8}_\d{6})(_\d{2})?\Z")


def at(project: Project, when: str, *args: str, tz: str = "UTC", slow: bool = False,
       code: int = 0) -> subprocess.CompletedProcess[str]:
    """``invoke ARGS`` with the clock started at ``when`` (UTC) and local time ``tz``;
    ``slow``: running at a twentieth of its speed (so a whole command fits in one second
    of it; libfaketime stretches sleeps too, and these commands never sleep)."""
    env = {**os.environ, "DEPLOY_CONFIG": str(project.config_path), "TZ": tz}
    clock = ["-f", f"@{when} x0.05"] if slow else [f"{when} UTC"]
    if slow:
        assert tz == "UTC", "-f reads the time in the command's own zone"
    done = subprocess.run(["faketime", *clock, sys.executable, "-m", "invoke",
                           "--search-root", str(REPO), *args], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == code, f"{args} at {when}: exit {done.returncode}\n{done.stderr}"
    return done


def version(k: int) -> str:
    return f"#!/bin/sh\necho version {k}\n"


def deploy_each(project: Project, *steps: tuple[str, int], tz: str = "UTC",
                slow: bool = False) -> None:
    """Deploy version k at each (instant, k), in turn."""
    for when, k in steps:
        project.write({"bin/tool": version(k)})
        at(project, when, "deploy.scripts", tz=tz, slow=slow)


def listed(project: Project, when: str, tz: str = "UTC") -> list[dict[str, Any]]:
    """``backups.list --json``, oldest first by id."""
    backups = json.loads(at(project, when, "backups.list", "--json", tz=tz).stdout)["backups"]
    return sorted(backups, key=lambda b: int(b["id"]))


def step_back(project: Project, when: str, *, through: list[int], tz: str = "UTC") -> None:
    """``rollback.scripts`` once per version in ``through``: each must restore it."""
    target = project.target / "bin" / "tool"
    for k in through:
        at(project, when, "rollback.scripts", tz=tz)
        assert target.read_text() == version(k)


@pytest.fixture
def scripts(project: Project) -> Project:
    project.configure(base=NO_FRAMEWORK_CONFIG)
    return project


def test_two_runs_in_one_second_keep_both_backups(scripts: Project) -> None:
    """Three deploys that all believe it is 12:00:00: the second and third backups get the
    same second in their names and a counter apart, and rollbacks step back in run order."""
    deploy_each(scripts, *(("2026-12-01 12:00:00", k) for k in (1, 2, 3)), slow=True)
    backups = listed(scripts, "2026-12-01 12:00:00")

    names = [NAME.match(Path(str(b["path"])).name) for b in backups]
    assert all(names), [b["path"] for b in backups]
    assert [m.groups() for m in names if m] == [("20261201_120000", None),
                                                ("20261201_120000", "_01")]
    step_back(scripts, "2026-12-01 12:00:00", through=[2, 1])


def test_the_repeated_hour_of_a_dst_fall_back(scripts: Project) -> None:
    """New York, 2026-11-01: 01:30 comes twice (EDT, then EST). Two deploys at the two
    01:30s back up under one wall-clock second, a counter apart, their index times an
    hour apart with their own offsets; rollbacks restore in run order."""
    tz = "America/New_York"
    deploy_each(scripts, ("2026-11-01 04:00:00", 1), ("2026-11-01 05:30:00", 2),
                ("2026-11-01 06:30:00", 3), tz=tz)
    backups = listed(scripts, "2026-11-01 06:40:00", tz)

    stamps = [NAME.match(Path(str(b["path"])).name) for b in backups]
    assert [m.group(1)[:13] for m in stamps if m] == ["20261101_0130"] * 2, backups
    assert [str(b["created"])[:16] for b in backups] == ["2026-11-01T01:30"] * 2
    assert [str(b["created"])[-6:] for b in backups] == ["-04:00", "-05:00"]
    step_back(scripts, "2026-11-01 06:45:00", through=[2, 1], tz=tz)


def test_a_clock_stepped_back_does_not_reorder_the_runs(scripts: Project) -> None:
    """The third deploy's clock is an hour behind the second's: its backup is named and
    timed before the second's, yet history lists it first and the first rollback undoes
    it, the second the one before."""
    deploy_each(scripts, ("2026-12-01 10:00:00", 1), ("2026-12-01 12:00:00", 2),
                ("2026-12-01 11:00:00", 3))

    runs = json.loads(at(scripts, "2026-12-01 11:05:00", "history", "--json").stdout)["runs"]
    backups = listed(scripts, "2026-12-01 11:05:00")

    assert [r["id"] for r in runs] == [3, 2, 1]
    assert [NAME.match(Path(str(b["path"])).name).group(1)[:13]  # type: ignore[union-attr]
            for b in backups] == ["20261201_1200", "20261201_1100"]
    step_back(scripts, "2026-12-01 11:10:00", through=[2, 1])


def test_retention_under_a_clock_behind_and_a_year_ahead(scripts: Project) -> None:
    """With a clock behind every backup, none is too old (an age below zero is no age);
    a year ahead, everything past retention_days goes but the newest backup of the target
    and what the step-back promise needs, and the promised rollback still works."""
    scripts.configure("\n[tool.deploy.backup]\nretention_days = 30\nmax_backups_per_type = 50\n",
                      base=NO_FRAMEWORK_CONFIG)
    deploy_each(scripts, *((f"2026-12-01 1{k}:00:00", k) for k in range(1, 6)))

    behind = json.loads(at(scripts, "2025-06-01 00:00:00", "backups.prune", "--dry-run",
                           "--json").stdout)
    ahead = at(scripts, "2027-12-01 00:00:00", "backups.prune", "--json")
    verdicts = json.loads(ahead.stdout)

    assert [b for b in behind["backups"] if b["action"] != "keep"] == []
    assert len(behind["backups"]) == 4
    removed = [b for b in verdicts["backups"] if b["action"] == "remove"]
    assert removed and all(b["rule"] == "too-old" for b in removed), verdicts
    kept = {b["rule"] for b in verdicts["backups"] if b["action"] == "keep"}
    assert "newest" in kept, verdicts
    assert len(listed(scripts, "2027-12-01 00:01:00")) == 4 - len(removed)
    step_back(scripts, "2027-12-01 00:05:00", through=[4])
