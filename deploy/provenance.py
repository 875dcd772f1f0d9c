"""Where a run came from: the commit, the ref and the CI run that made it (issue 14).

The task layer fills :class:`Provenance` from GitHub Actions' variables, or outside Actions
from the git checkout that holds the config file, read here straight from ``.git`` (no
``git`` process: git may be missing, and a run must never fail for want of it). Anything
unreadable is None.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1, or SHA-256 repositories
# How far up from the config's folder a .git is looked for.
MAX_DEPTH = 64


class Provenance(NamedTuple):
    commit: str | None = None   # the full commit id
    ref: str | None = None      # the branch or tag name
    ci_url: str | None = None   # the CI run's page


def _read(path: Path, limit: int = 4096) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except (OSError, ValueError):
        return None


def _git_dir(folder: Path) -> Path | None:
    """The git folder of the checkout holding ``folder``: ``.git``, or where a worktree's
    ``.git`` file (``gitdir: PATH``) points."""
    for depth, here in enumerate((folder, *folder.parents)):
        if depth > MAX_DEPTH:
            return None
        dot = here / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            text = _read(dot) or ""
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:"):].strip())
                return target if target.is_absolute() else (here / target)
            return None
    return None


def _ref_commit(git_dir: Path, common: Path, ref: str) -> str | None:
    for base in (git_dir, common):
        text = _read(base / ref)
        if text is not None and SHA.fullmatch(text.strip()):
            return text.strip()
    packed = _read(common / "packed-refs", limit=16 * 1024 * 1024) or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref and SHA.fullmatch(sha):
            return sha
    return None


def checkout(folder: Path) -> tuple[str | None, str | None]:
    """(HEAD's commit, its branch name) of the git checkout holding ``folder``; a detached
    HEAD has no branch; (None, None) outside a checkout or when it cannot be read."""
    try:
        git_dir = _git_dir(folder.resolve())
        if git_dir is None:
            return None, None
        common_text = _read(git_dir / "commondir")
        common = (git_dir / common_text.strip()) if common_text else git_dir
        head = (_read(git_dir / "HEAD") or "").strip()
    except (OSError, RuntimeError, ValueError):
        return None, None
    if SHA.fullmatch(head):
        return head, None
    if not head.startswith("ref:"):
        return None, None
    ref = head[len("ref:"):].strip()
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    return _ref_commit(git_dir, common, ref), branch
