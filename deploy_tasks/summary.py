"""The Markdown section a writing task appends to ``$GITHUB_STEP_SUMMARY`` (issue 14).

One section per task run, whatever its outcome: a heading with the task and what happened,
where the run came from, the changes (action, target, backup, backup id) and, for a run
that changed something, the command that undoes it. Everything from a name, a path or a
message is escaped (``common.shown``) and table cells escape their pipes; free text (an
error message, a command) goes into a code fence longer than any run of backticks in it, so
nothing it holds can become Markdown.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deploy_tasks.common import shown

if TYPE_CHECKING:
    from deploy.provenance import Provenance
    from deploy_tasks.actions import Report

# A summary with more rows than this lists them in a collapsed <details> block, and lists
# at most MAX_ROWS of them: GitHub takes at most 1 MiB of summary per step.
FOLD_OVER = 20
MAX_ROWS = 500
HEADLINES = {
    "changed": "changed",
    "unchanged": "nothing to do",
    "dry-run": "dry run, nothing written",
    "blocked": "blocked",
    "failed": "failed",
    "locked": "lock held by another run",
}


def cell(value: object) -> str:
    """Text for a Markdown table cell: escaped (:func:`shown`), its pipes too."""
    return shown(value).replace("\\", "\\\\").replace("|", "\\|") \
        .replace("<", "&lt;").replace(">", "&gt;")


def code(value: object) -> str:
    """A name as Markdown code in a table cell: a fence of more backticks than any run of
    backticks in it (CommonMark code spans), pipes escaped."""
    text = shown(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(text: str, lang: str = "text") -> list[str]:
    """Free text as a fenced code block (CommonMark: a longer fence than any inside)."""
    lines = [shown(line) for line in text.splitlines()] or [""]
    longest = max((len(run) for line in lines for run in re.findall(r"`{3,}", line)),
                  default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *lines, fence]


def _where(provenance: Provenance | None) -> str | None:
    if provenance is None:
        return None
    parts = []
    if provenance.commit:
        parts.append(f"commit {code(provenance.commit[:12])}")
    if provenance.ref:
        parts.append(f"ref {code(provenance.ref)}")
    if provenance.ci_url:
        parts.append(f"[Actions run]({cell(provenance.ci_url).replace(')', '%29')})")
    return "From " + ", ".join(parts) + "." if parts else None


def _heading(report: Report, outcome: str, code_: int, run: int | None) -> str:
    what = HEADLINES[outcome]
    if outcome in ("blocked", "failed", "locked"):
        what += f" (exit {code_})"
        if code_ >= 128:
            what = f"interrupted (exit {code_})"
    head = f"### {cell(report.task)}: "
    if run is not None:
        head += f"run {run}, "
    if outcome == "changed":
        return head + f"{len(report.rows)} change(s)"
    return head + what


def section(report: Report, outcome: str, *, exit_code: int, run: int | None, undo: str,
            message: str | None, problems: tuple[tuple[str, str], ...],
            provenance: Provenance | None) -> str:
    lines = [_heading(report, outcome, exit_code, run), ""]
    status = {
        # prune and history.keep change the tree without recording a run of their own
        "changed": f"{len(report.rows)} change(s) recorded in run {run}." if run is not None
                   else f"{len(report.rows)} change(s) made to the backup tree.",
        "unchanged": "Nothing to do: every target is up to date; nothing was written.",
        "dry-run": f"Dry run: {len(report.rows)} change(s) would be made; nothing was "
                   "written.",
        "blocked": "Blocked: nothing was written.",
        "locked": "Another run holds the lock: nothing was written.",
        "failed": "Failed.",
    }[outcome]
    if outcome == "changed" and report.undoes is not None:
        status += f" It undid run {report.undoes}."
    lines += [status, ""]
    where = _where(provenance)
    if where:
        lines += [where, ""]
    if message:
        lines += [*fenced(message), ""]
    if problems:
        lines += ["| target | problem |", "|---|---|"]
        lines += [f"| {code(t)} | {cell(p)} |" for t, p in problems]
        lines.append("")
    if report.rows:
        table = ["| action | target | backup | id |", "|---|---|---|---|"]
        table += [f"| {cell(r.action)} | {code(r.target)} | {code(r.backup or '-')} | "
                  f"{r.id if r.id is not None else '-'} |" for r in report.rows[:MAX_ROWS]]
        if len(report.rows) > MAX_ROWS:
            table.append(f"| ... | and {len(report.rows) - MAX_ROWS} more: `history`, "
                         "`backups.list` | | |")
        if len(report.rows) > FOLD_OVER:
            table = [f"<details><summary>{len(report.rows)} target(s)</summary>", "",
                     *table, "", "</details>"]
        lines += [*table, ""]
    for warning in report.warnings:
        lines += ["> [!WARNING]", f"> {cell(warning)}", ""]
    if undo:
        lines += ["To undo this run:", "", *fenced(undo, "sh"), ""]
    return "\n".join(lines) + "\n"
