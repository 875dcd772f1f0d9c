"""Smoke test of the benchmark harness: it runs, and its table carries numeric ratios.

No timing is asserted: a loaded CI machine must not fail the suite.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Rows 2i and 7i time the installed command, beside this Python (the venv's) or on PATH.
INSTALLED = (Path(sys.executable).parent / "claude-pm-deploy").is_file() \
    or shutil.which("claude-pm-deploy") is not None


def test_quick_rows_print_a_table_with_numeric_ratios(tmp_path: Path) -> None:
    """``--quick --rows 2,2i,7,7i --repeat 1`` prints the machine, then rows 2 and 7 with
    ratios, and the same rows through the installed command (2i, 7i) when it is there."""
    out = tmp_path / "bench.json"
    wanted = ["2", "2i", "7", "7i"] if INSTALLED else ["2", "7"]

    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--quick", "--rows", ",".join(wanted),
         "--repeat", "1", "--dir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("machine: "), done.stdout
    assert "scratch: " in done.stdout
    rows = {line.split()[0]: line for line in done.stdout.splitlines()
            if re.match(r"^(2|7)i?\s", line)}
    assert set(rows) == set(wanted), done.stdout
    for line in rows.values():
        assert re.search(r"\s\d+\.\d\d\s+<= \d", line), line
    document = json.loads(out.read_text())
    assert [r["row"] for r in document["rows"]] == wanted
    assert all(isinstance(r["ratio"], float) and r["ratio"] > 0 for r in document["rows"])
    assert list(tmp_path.glob("deploy-bench-*")) == []
