"""Conflicts on rendered files: templates, the installed framework template, parent CLAUDE.md.

A conflict exists when the target exists and its bytes differ from what this
toolkit last wrote or accepted there (the index's last write), or this toolkit never
wrote it. ``--on-conflict`` decides what happens to one:

- ``fail`` (default): the run is blocked (exit 3) before anything is written;
- ``keep``: the target is left as it is, and accepted (below);
- ``overwrite``: the target is backed up (the store always does) and replaced;
- ``merge``: a 3-way merge (base: our render behind the target, a: the target, b: the
  new render); a clean merge is written (or accepted, when the target already holds it),
  a conflicting one blocks the run and shows the hunks.

The choice is recorded, so the same file does not block the next deploy again: a
write records its bytes, and a target settled without a write is *accepted*
(``deploy.store.accept``): its bytes become ours, with a render as their merge base.
A target holding bytes we wrote or accepted over a render (a merge, a kept or adopted
hand edit) carries the user's edits, so a later template change merges into it,
under every policy but ``overwrite``; only a merge that conflicts blocks it.

The merge base of accepted bytes ("ours" is the target, "theirs" each new render):

- ``keep``: the render the file was kept against. Keeping declines that render's
  changes, as ``git merge -s ours`` does: the next deploy of the same template and
  context is nothing to do, and a later change merges only what changed since;
- ``merge`` of a target that already holds the merge: the new render, which it holds;
- ``templates.adopt`` (:func:`adopt`): the render behind the last write, which the
  edit was made on, so a template change made before the adopt still merges in (to
  decline it, keep); the current render when there is none (a file this toolkit
  never wrote, or one made by hand after a rollback removed ours).

The merge base of the target's last write is :func:`base_render`. The index keeps
every render's pure output for it; scripts and version files never come here: they
belong to the toolkit.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from deploy import fsio
from deploy.errors import Blocked, ConfigError
from deploy.plan import Accept, Change, Plan, Render, Skip, target_state
from deploy.store import ChangeRow, Index, LatestRender

if TYPE_CHECKING:
    from deploy.codes import Compiled

POLICIES = ("fail", "keep", "overwrite", "merge")
NEW_MODE = 0o644
HUNK_LIMIT = 40
# Rollbacks of rollbacks followed back to the write whose render is the base; a chain
# longer than this has no base (it only happens with deliberate back-and-forth).
CHAIN_LIMIT = 64


class MergeConflict(Blocked):
    """A 3-way merge that needs a human; ``details`` holds the conflict hunks to show."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


class Rendered(NamedTuple):
    """A file this toolkit renders: where it goes and the output it should hold now."""

    category: str
    key: str
    target: Path
    output: bytes
    template_sha256: str
    context_sha256: str = ""
    code: Compiled | None = None  # the template's code compiled in this run, to store

    @property
    def render(self) -> Render:
        """This output as a render record: what a write stores, or an accepted file's base."""
        return Render(self.template_sha256, self.output, self.context_sha256, self.code)


class Merge(NamedTuple):
    """The result of a 3-way merge: the merged bytes, and the conflict hunks (empty if clean)."""

    output: bytes
    conflicts: tuple[str, ...]


def check_policy(value: str) -> str:
    """``value`` if it is one of the ``--on-conflict`` policies, else ConfigError (exit 2)."""
    if value not in POLICIES:
        raise ConfigError(f"--on-conflict {value!r}: must be one of {', '.join(POLICIES)}")
    return value


def base_render(index: Index | None, category: str, key: str, last: ChangeRow | None,
                latest: LatestRender | None = None) -> LatestRender | None:
    """Our pure render behind ``last`` (the target's last write), or None when there is none.

    - a write that recorded a render (a deploy's write, a merge, an accepted file): that
      render (after a merge or an accepted edit the file holds more than the render);
    - a rollback's write restores the old bytes of the change it reverts: their base is
      the base of the write before that change (so a hand edit a rollback brought back
      still merges, instead of being overwritten for want of a base);
    - else (``rollback.templates --render N``) our newest render with the same bytes.

    ``latest``, the key's newest render when the caller has it, saves a query when it is
    that render.
    """
    if index is None or last is None or last.new_sha256 is None:
        return None
    row: ChangeRow | None = last
    for _ in range(CHAIN_LIMIT):
        if row is None or row.new_sha256 is None:
            break
        if latest is not None and latest.change_seq == row.seq:
            return latest
        own = index.renders.of_change(row.category, row.key, row.seq)
        if own is not None:
            return own
        reverted = index.changes.get(row.reverts) if row.reverts is not None else None
        if reverted is None:
            break
        row = index.changes.last_write(row.target, before=reverted.seq)
    return index.renders.with_output(category, key, last.new_sha256)


def merge_base(index: Index | None, category: str, key: str, last: ChangeRow | None,
               latest: LatestRender | None = None) -> bytes | None:
    """The output of :func:`base_render`: the base of a 3-way merge with the target."""
    base = base_render(index, category, key, last, latest)
    return base.output if base is not None else None


def _lines(data: bytes, what: str, target: Path) -> list[str]:
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as err:
        raise Blocked(f"{target}: cannot merge: {what} is not UTF-8 text; use --on-conflict "
                      "keep or overwrite") from err


def merge(base: bytes, edited: bytes, new: bytes, target: Path) -> Merge:
    """3-way merge of the edited target and the new render against our last render."""
    from merge3 import Merge3

    m = Merge3(_lines(base, "our last render", target), _lines(edited, "the target", target),
               _lines(new, "the new render", target))
    conflicts = []
    for group in m.merge_groups():
        if group[0] != "conflict":
            continue
        _, _base, mine, theirs = group
        hunk = ["<<<<<<< " + str(target), *mine, "=======\n", *theirs, ">>>>>>> new render"]
        conflicts.append("".join(line if line.endswith("\n") else line + "\n" for line in hunk))
    merged = "".join(m.merge_lines(name_a=str(target), name_b="new render"))
    return Merge(merged.encode("utf-8"), tuple(conflicts))


def _change(item: Rendered, current: fsio.FileState, output: bytes, note: str = "") -> Change:
    return Change(item.category, item.key, item.target, current, output,
                  fsio.sha256_bytes(output), len(output),
                  current.mode if current.mode is not None else NEW_MODE,
                  render=item.render, note=note)


class _Outcome(NamedTuple):
    change: Change | None = None
    skip: Skip | None = None
    problem: str | None = None
    hunks: tuple[str, ...] = ()
    accept: Accept | None = None


def _kept(item: Rendered, current: fsio.FileState) -> _Outcome:
    """Keep the target as it is, accepted against the new render (see the module's text)."""
    return _Outcome(skip=Skip(item.category, item.key, item.target, "kept"),
                    accept=Accept(item.category, item.key, item.target, current, item.render))


def _merged(item: Rendered, current: fsio.FileState, base: bytes, policy: str, *,
            accepted: bool) -> _Outcome:
    """Merge the new render into the target; ``accepted``: the target holds bytes we wrote or
    accepted (else it is in conflict, and the policy is merge or keep)."""
    result = merge(base, fsio.read_bytes(item.target), item.output, item.target)
    if not result.conflicts:
        if fsio.sha256_bytes(result.output) != current.sha256:
            return _Outcome(change=_change(item, current, result.output, "merged"))
        if accepted:
            return _Outcome(skip=Skip(item.category, item.key, item.target, "unchanged"))
        # The edits already hold the merge (the template did not change, or the edit made
        # the same change): nothing to write, but the choice is recorded, or the next plain
        # deploy would be blocked by the same file again.
        return _Outcome(skip=Skip(item.category, item.key, item.target,
                                  "accepted: it already holds the merge"),
                        accept=Accept(item.category, item.key, item.target, current,
                                      item.render))
    if policy == "keep":
        return _kept(item, current)
    return _Outcome(problem=f"{item.target}: merge conflict in {len(result.conflicts)} "
                            "hunk(s) between its edits and the new render",
                    hunks=result.conflicts)


def _resolve(index: Index | None, item: Rendered, policy: str) -> _Outcome:
    current = target_state(item.target)
    new_sha = fsio.sha256_bytes(item.output)
    if current.exists and current.sha256 == new_sha:
        return _Outcome(skip=Skip(item.category, item.key, item.target, "unchanged"))
    if not current.exists:
        return _Outcome(change=_change(item, current, item.output))
    last = index.changes.last_write(str(item.target)) if index is not None else None
    base = merge_base(index, item.category, item.key, last)
    if last is not None and last.new_sha256 == current.sha256:
        if base is None or fsio.sha256_bytes(base) == current.sha256 or policy == "overwrite":
            return _Outcome(change=_change(item, current, item.output))
        # The target holds edits we merged or accepted: merge again so that they survive.
        return _merged(item, current, base, policy, accepted=True)
    why = (f"{item.target}: edited since run {last.run} wrote it" if last is not None
           else f"{item.target}: exists and was not written by this toolkit")
    if policy == "keep":
        return _kept(item, current)
    if policy == "overwrite":
        return _Outcome(change=_change(item, current, item.output, "overwrote edits"))
    if policy == "fail":
        return _Outcome(problem=why)
    if base is None:
        return _Outcome(problem=f"{why}; no earlier render to merge against")
    return _merged(item, current, base, policy, accepted=False)


def resolve(index: Index | None, items: Iterable[Rendered], policy: str,
            categories: tuple[str, ...]) -> Plan:
    """Plan writing each rendered file under ``policy``; conflicts block the whole plan.

    Every item is checked before anything is raised, so the message names every
    conflicting file at once.
    """
    check_policy(policy)
    changes: list[Change] = []
    skips: list[Skip] = []
    accepts: list[Accept] = []
    problems: list[str] = []
    blocking: list[tuple[str, str]] = []  # (target, problem), for --json's error document
    hunks: list[str] = []
    for item in items:
        outcome = _resolve(index, item, policy)
        if outcome.change is not None:
            changes.append(outcome.change)
        if outcome.skip is not None:
            skips.append(outcome.skip)
        if outcome.accept is not None:
            accepts.append(outcome.accept)
        if outcome.problem is not None:
            problems.append(outcome.problem)
            blocking.append((str(item.target), outcome.problem))
            hunks.extend(outcome.hunks)
    if hunks:
        shown = hunks[:HUNK_LIMIT]
        more = f"... and {len(hunks) - len(shown)} more hunk(s)\n" if len(hunks) > len(shown) \
            else ""
        raise MergeConflict("; ".join(problems) + "; nothing written: pass --on-conflict keep "
                            "to keep the file as it is (resolve the hunks shown in it by hand "
                            "first, if you like), or overwrite",
                            "".join(shown) + more).listing(blocking)
    if problems:
        raise Blocked("; ".join(problems) + "; nothing written: pass --on-conflict keep, "
                      "overwrite or merge, or accept the edits with `invoke templates.adopt`"
                      ).listing(blocking)
    return Plan(tuple(changes), tuple(skips), categories, tuple(accepts))


def adopt(index: Index | None, items: Iterable[Rendered], categories: tuple[str, ...]) -> Plan:
    """Plan ``templates.adopt``: accept each target that is in conflict as it is, writing
    nothing; its merge base is the render behind the last write, else the current render.

    A target that holds what this toolkit last wrote or accepted needs nothing
    (``unchanged``); an absent one has nothing to accept. One that holds the current
    render exactly is accepted with that render as its base.
    """
    skips: list[Skip] = []
    accepts: list[Accept] = []
    for item in items:
        current = target_state(item.target)
        last = index.changes.last_write(str(item.target)) if index is not None else None
        if not current.exists:
            skips.append(Skip(item.category, item.key, item.target, "absent"))
            continue
        if last is not None and last.new_sha256 == current.sha256:
            skips.append(Skip(item.category, item.key, item.target, "unchanged"))
            continue
        base = base_render(index, item.category, item.key, last)
        if base is None or current.sha256 == fsio.sha256_bytes(item.output):
            render = item.render
        else:
            render = Render(base.template_sha256, base.output, base.context_sha256)
        accepts.append(Accept(item.category, item.key, item.target, current, render))
    return Plan((), tuple(skips), categories, tuple(accepts))
