"""Plans: what a run would change, computed before anything is written.

The same Plan serves ``--dry-run`` (printed with diffs), ``--json`` and the
real run, so what a maintainer previews is what gets applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deploy import fsio
from deploy.errors import ConfigError
from deploy.fsio import FileState

DIFF_LIMIT = 1 << 20


@dataclass(frozen=True)
class Render:
    """A rendered file's provenance, stored in the index as the next render number."""

    template_sha256: str
    output: bytes
    context_sha256: str = ""


@dataclass(frozen=True)
class Change:
    """One target and what it will hold: bytes, the file at a Path, or nothing (delete)."""

    category: str
    key: str
    target: Path
    old: FileState
    new: bytes | Path | None
    new_sha256: str | None
    new_size: int
    mode: int
    render: Render | None = None
    reverts: int | None = None
    note: str = ""

    @property
    def action(self) -> str:
        if self.new is None:
            return "delete"
        return "update" if self.old.exists else "create"


@dataclass(frozen=True)
class Skip:
    """A target left alone, and why (``unchanged``, ``kept``: a conflict kept by choice)."""

    category: str
    key: str
    target: Path
    reason: str


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = ()
    skips: tuple[Skip, ...] = ()
    categories: tuple[str, ...] = field(default=())

    def __add__(self, other: Plan) -> Plan:
        cats = tuple(dict.fromkeys(self.categories + other.categories))
        return Plan(self.changes + other.changes, self.skips + other.skips, cats)


def target_contents(target: Path) -> fsio.Contents | None:
    """The target's contents (None: absent); a symlink or a folder in its place is
    refused, never followed.

    Policy for symlinked targets: renaming over a link would silently turn it into a
    regular file, and a rollback could not bring the link back, so we refuse (exit 2).
    """
    try:
        return fsio.read_contents(target)
    except OSError as err:
        raise ConfigError(
            f"{target}: target is a symlink or not a regular file; refusing to replace it "
            "(remove it or point the target elsewhere)") from err


def target_state(target: Path) -> FileState:
    """The target's state, under the same refusal as :func:`target_contents`."""
    contents = target_contents(target)
    return fsio.ABSENT if contents is None else contents.state()


def _lines(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _read(source: bytes | Path | None, size: int) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    if size > DIFF_LIMIT:
        return None
    return source.read_bytes()


def unified_diff(change: Change) -> str:
    """A unified diff of the target's old bytes against its new ones, for ``--dry-run``."""
    import difflib  # only dry runs print diffs

    if change.old.exists and change.old.size > DIFF_LIMIT:
        return f"(large file: {change.old.size} -> {change.new_size} bytes)\n"
    old = _read(change.target, change.old.size) if change.old.exists else b""
    new = _read(change.new, change.new_size)
    if new is None and change.new is not None:
        return f"(large file: {change.old.size} -> {change.new_size} bytes)\n"
    old_lines, new_lines = _lines(old), _lines(new)
    if old_lines is None or new_lines is None:
        return f"Binary files {change.target} differ\n"
    text = "".join(difflib.unified_diff(
        old_lines, new_lines,
        fromfile=str(change.target) if change.old.exists else "/dev/null",
        tofile=str(change.target) if change.new is not None else "/dev/null"))
    if change.old.exists and change.old.mode != change.mode and change.new is not None:
        text += f"mode {change.old.mode:04o} -> {change.mode:04o}\n"
    return text
