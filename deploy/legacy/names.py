"""The names the original wrote its backups under, each with its timestamp.

Every pattern matches a whole file name and carries the timestamp the original put in it
(``datetime.now()``, naive local time: ``%Y%m%d_%H%M%S``, the framework's with
milliseconds). A name without a timestamp that parses as a real date and time is not a
legacy backup: it may be anything a user keeps beside the scripts or the version files.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

_STAMP = r"(?P<date>\d{8})_(?P<time>\d{6})"
_MILLIS = r"_(?P<ms>\d{3})"
# The original's collision counter (parent directory manager, framework): _01, _02 ...
_COUNTER = r"(?:_(?P<counter>\d{2}))?"


class Pattern(NamedTuple):
    """One naming scheme of the original: its regex, and the name as the guide spells it."""

    regex: re.Pattern[str]
    spelled: str


def _pattern(regex: str, spelled: str) -> Pattern:
    return Pattern(re.compile(regex + r"\Z", re.DOTALL), spelled)


# The framework template, in framework_backups/ (v0.7.5) and backups/framework/ (v0.8.0).
FRAMEWORK = _pattern(rf"framework_CLAUDE_md_{_STAMP}{_MILLIS}{_COUNTER}\.backup",
                     "framework_CLAUDE_md_YYYYMMDD_HHMMSS_mmm[_NN].backup")
# Scripts beside their target (v0.7.5 deploy_scripts.py, v0.8.0 --unified): moved or copied
# with ``target.with_suffix(".backup.<ts>")``.
SCRIPT_BESIDE = _pattern(rf"(?P<name>.+)\.backup\.{_STAMP}", "<name>.backup.YYYYMMDD_HHMMSS")
# Version files beside themselves (v0.7.5 subsystem_versions.py).
VERSION_BESIDE = _pattern(rf"(?P<name>[A-Z0-9][A-Z0-9_-]*_VERSION)\.backup\.{_STAMP}",
                          "<NAME>_VERSION.backup.YYYYMMDD_HHMMSS")
# v0.8.0's script deployer tree (~/.local/.claude-pm/backups/scripts/): no counter.
SCRIPT_TREE = _pattern(rf"(?P<name>.+)_backup_{_STAMP}", "<name>_backup_YYYYMMDD_HHMMSS")
# v0.8.0's version manager (<framework root>/.claude-pm/backups/versions/): no counter.
VERSION_TREE = _pattern(rf"(?P<name>.+)_backup_{_STAMP}", "<file>_backup_YYYYMMDD_HHMMSS")
# The template manager, one folder per template id: <id>_<ts>.backup, no counter.
TEMPLATE = _pattern(rf"(?P<name>.+)_{_STAMP}\.backup", "<id>/<id>_YYYYMMDD_HHMMSS.backup")
# The parent directory manager's general backups (CLAUDE.md, and the version files of its
# update_subsystem_version): <file>_<ts>.backup, then _NN when taken.
PARENT = _pattern(rf"(?P<name>.+)_{_STAMP}{_COUNTER}\.backup",
                  "<file>_YYYYMMDD_HHMMSS[_NN].backup")


# A subsystem's version file: what v0.8.0's version manager and the parent directory
# manager backed up under its own name (``VERSION`` alone names several files).
VERSION_FILE = re.compile(r"([A-Z0-9][A-Z0-9_-]*)_VERSION\Z")


class Parsed(NamedTuple):
    """What a legacy name says: the name it was taken of (script, file, template id; empty
    for the framework's) and when."""

    name: str
    when: datetime


def parse(pattern: Pattern, filename: str) -> Parsed | None:
    """The name and time ``filename`` carries under ``pattern``; None when it does not
    match or its timestamp is not a real date and time."""
    match = pattern.regex.match(filename)
    if match is None:
        return None
    try:
        when = datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    groups = match.groupdict()
    if groups.get("ms"):
        when = when.replace(microsecond=int(groups["ms"]) * 1000)
    return Parsed(groups.get("name") or "", when)
