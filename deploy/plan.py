"""Plans: what a run would change, computed before anything is written.

The same Plan serves ``--dry-run`` (printed with diffs), ``--json`` and the
real run, so what a maintainer previews is what gets applied.

Planning and applying a plan report their progress through :func:`tick` (issue 12): the
package never prints, so the task layer installs a sink (:func:`watch`) that shows it on a
terminal. It lives here, in a module every planner and the store already import, so that
a run pays nothing for it but a call and a test of a global, not even an import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from deploy import fsio
from deploy.errors import ConfigError
from deploy.fsio import FileState, Stream

if TYPE_CHECKING:
    from deploy.codes import Compiled

DIFF_LIMIT = 1 << 20

# (what is being done, how many are done, of how many, the item: category/key)
ProgressSink = Callable[[str, int, int, str], None]
_progress: ProgressSink | None = None


def watch(sink: ProgressSink | None) -> None:
    """Send every :func:`tick` to ``sink`` from now on (None: to nobody)."""
    global _progress
    _progress = sink


def tick(doing: str, done: int, total: int, item: str) -> None:
    """``done`` of ``total`` items are through ``doing``; ``item`` is the one at hand."""
    if _progress is not None:
        _progress(doing, done, total, item)


class Render(NamedTuple):
    """A rendered file's provenance, stored in the index as the next render number."""

    template_sha256: str
    output: bytes
    context_sha256: str = ""
    code: Compiled | None = None  # the template's compiled code, stored with the render


class Change(NamedTuple):
    """One target and what it will hold: bytes, the file at a Path, or nothing (delete)."""

    category: str
    key: str
    target: Path
    old: FileState
    new: bytes | Path | Stream | None
    new_sha256: str | None
    new_size: int
    mode: int
    render: Render | None = None
    reverts: int | None = None
    note: str = ""
    owner: tuple[int, int] | None = None  # (uid, gid) to give it; None: keep the old one's

    @property
    def new_owner(self) -> tuple[int, int] | None:
        """Who the written file belongs to: ``owner``, else the target's own (Ansible and
        dpkg keep an existing target's owner and group), else whoever runs this."""
        return self.owner if self.owner is not None else self.old.owner

    @property
    def action(self) -> str:
        if self.new is None:
            return "delete"
        return "update" if self.old.exists else "create"


class Skip(NamedTuple):
    """A target left alone, and why (``unchanged``, ``kept``: a conflict kept by choice)."""

    category: str
    key: str
    target: Path
    reason: str


class Accept(NamedTuple):
    """A rendered target accepted as it is, nothing written: its bytes become ours, and
    ``render`` the merge base of later template changes (``deploy.store.accept``)."""

    category: str
    key: str
    target: Path
    current: FileState
    render: Render


class Plan(NamedTuple):
    changes: tuple[Change, ...] = ()
    skips: tuple[Skip, ...] = ()
    categories: tuple[str, ...] = ()
    accepts: tuple[Accept, ...] = ()  # recorded with the run, never written


def combine(*plans: Plan) -> Plan:
    """One plan holding every change, skip and accepted target of ``plans``, in order."""
    return Plan(tuple(c for p in plans for c in p.changes),
                tuple(s for p in plans for s in p.skips),
                tuple(dict.fromkeys(c for p in plans for c in p.categories)),
                tuple(a for p in plans for a in p.accepts))


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
    return fsio.state_of(target_contents(target))


def _lines(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _read(source: bytes | Path | Stream | None, size: int) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    if size > DIFF_LIMIT:
        return None
    return source.read() if isinstance(source, Stream) else source.read_bytes()


def unified_diff(change: Change, *, label: Callable[[str], str] = str) -> str:
    """A unified diff of the target's old bytes against its new ones, for ``--dry-run``.

    ``label`` spells the target's path where the diff names it (the task layer escapes it);
    the hunks hold the file's own lines.
    """
    import difflib  # only dry runs print diffs

    if change.old.exists and change.old.size > DIFF_LIMIT:
        return f"(large file: {change.old.size} -> {change.new_size} bytes)\n"
    old = _read(change.target, change.old.size) if change.old.exists else b""
    new = _read(change.new, change.new_size)
    if new is None and change.new is not None:
        return f"(large file: {change.old.size} -> {change.new_size} bytes)\n"
    old_lines, new_lines = _lines(old), _lines(new)
    if old_lines is None or new_lines is None:
        return f"Binary files {label(str(change.target))} differ\n"
    text = "".join(
        # A last line without its newline gets diff's own marker on a line of its own
        # (else `-003` and `+004` of a version file ran together on one line).
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in difflib.unified_diff(
            old_lines, new_lines,
            fromfile=label(str(change.target)) if change.old.exists else "/dev/null",
            tofile=label(str(change.target)) if change.new is not None else "/dev/null"))
    if change.old.exists and change.old.mode != change.mode and change.new is not None:
        text += f"mode {change.old.mode:04o} -> {change.mode:04o}\n"
    return text
