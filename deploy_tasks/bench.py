"""``invoke bench``: run the benchmark harness (``bench/bench.py``) in its own process.

The harness times whole ``invoke`` processes, so it runs as a child here rather than
in this one; nothing heavy is imported when the task list is built.
"""

from __future__ import annotations

from invoke import Context

from deploy_tasks.common import echo
from deploy_tasks.flags import dry, task


@task(help={"quick": "smaller sizes and 3 repeats (about half a minute)",
            "rows": "comma-separated rows to run, e.g. 1,2,7 (default: all)",
            "repeat": "pairs per row (default 5; --quick 3)",
            "json_": "also write the results as JSON to this file",
            "dir_": "make the scratch folder under DIR (default: the temp dir)",
            "profile": "rerun each row that misses its target under cProfile",
            "keep": "keep the scratch folder"})
def bench(c: Context, quick: bool = False, rows: str | None = None, repeat: int = 0,
          json_: str | None = None, dir_: str | None = None, profile: bool = False,
          keep: bool = False) -> None:
    """Time the real CLI against same-run baselines and print the ratio table."""
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    from invoke.exceptions import Exit

    script = Path(__file__).resolve().parent.parent / "bench" / "bench.py"
    argv = [sys.executable, str(script)]
    argv += ["--quick"] if quick else []
    argv += ["--rows", rows] if rows else []
    argv += ["--repeat", str(repeat)] if repeat else []
    argv += ["--json", json_] if json_ else []
    argv += ["--dir", dir_] if dir_ else []
    argv += ["--profile"] if profile else []
    argv += ["--keep"] if keep else []
    if dry(c):  # Invoke's --dry: show the command instead of running it, like c.run
        echo(shlex.join(argv))
        return
    code = subprocess.run(argv, check=False).returncode
    if code:
        raise Exit(code=code)
