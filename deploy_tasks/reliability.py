"""``invoke reliability [--quick]``: run the reliability suite and print what it proved.

The suite (``tests/reliability``) injects faults, kills, races and hostile input and
checks RELIABILITY.md's six invariants after each; every test counts what it did into
a JSON report. This task runs it with pytest and prints the table: per fault class,
faults injected, runs that kept every invariant, bytes lost. ``--quick`` is the
default-size suite CI runs; without it the long sweeps (``--runslow``) run too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from invoke import Context
from invoke.exceptions import Exit

from deploy_tasks.common import echo, report_error
from deploy_tasks.flags import dry, task

ROOT = Path(__file__).resolve().parent.parent


def format_table(rows: list[dict[str, Any]]) -> str:
    """The table as aligned text, with a total line."""
    head = ("fault class", "faults injected", "runs kept invariants", "bytes lost")
    body = [(str(r["fault_class"]), str(r["injected"]), str(r["kept"]), str(r["bytes_lost"]))
            for r in rows]
    total = ("total", str(sum(int(r["injected"]) for r in rows)),
             str(sum(int(r["kept"]) for r in rows)), str(sum(int(r["bytes_lost"]) for r in rows)))
    widths = [max(len(line[i]) for line in (head, *body, total)) for i in range(4)]

    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join([line[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                                       zip(line[1:], widths[1:], strict=True)])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *map(fmt, body), rule, fmt(total)])


@task(help={"quick": "the default-size suite CI runs (without it: the long sweeps too)",
            "k": "only tests matching this pytest -k expression"})
def reliability(c: Context, quick: bool = False, k: str | None = None) -> None:
    """Run the reliability suite (faults, kills, races, bad input) and print the table."""
    # Imported here: every command loads this module to list the task (tempfile alone pulls in
    # random and hashlib, some 3 ms of each `invoke` start).
    import json
    import shlex
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        report = Path(tmp) / "report.json"
        args = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "reliability"), "-q",
                "-p", "no:cacheprovider"]
        if not quick:
            args.append("--runslow")
        if k:
            args += ["-k", k]
        env = {**os.environ, "RELIABILITY_REPORT": str(report)}
        if dry(c):  # Invoke's --dry: show the command instead of running it, like c.run
            echo(shlex.join(args))
            return
        done = subprocess.run(args, cwd=ROOT, env=env, check=False)
        rows = json.loads(report.read_text())["rows"] if report.exists() else []
    echo()
    for line in (format_table(rows) if rows else "no faults were injected").splitlines():
        echo(line)
    if done.returncode != 0:
        report_error(f"the reliability suite failed (pytest exit {done.returncode})")
        raise Exit(code=1)
