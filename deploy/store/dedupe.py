"""Equal backups stored once (issue 13 "Dedupe"): a new backup whose bytes some backup of
the tree holds already becomes a hard link to that file instead of a second copy.

Where: anywhere in the tree, whatever the category (a script and a template with the same
bytes share too), looked up by sha256 and size in the index (``changes_sha``), so finding
one costs an index lookup, not a scan. The tree is one folder of one file system in every
layout the contract names; a category folder mounted elsewhere makes ``os.link`` fail
with EXDEV, and any failing link falls back to the ordinary copy.

What may be shared: only a plain backup that verifies now (its sha256 re-hashed, ours,
0600, not a symlink, and every hard link of it a name the index records with these bytes,
``stored.link_problem``), and only while the target still holds the planned bytes (it is
re-hashed, as the copy would have hashed it). A ``.zst`` is never linked under a plain name
(every contract name must restore with ``cp``): a compressed backup and a plain one of the
same bytes are two files, until the plain one is compressed too and its ``.zst`` name is
linked to the existing ``.zst`` (``compress``).

Removing a name (prune, a failed run's cleanup, recovery of a planned row) removes only
that name: the inode stays while another row's name holds it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

from deploy import fsio
from deploy.store import stored
from deploy.store.index import Index

log = logging.getLogger("deploy")


class Source(NamedTuple):
    """An existing plain backup to link a new one to, and the row whose write made it."""

    path: Path
    blob: int


def source(tree: Path, index: Index, sha256: str | None, size: int) -> Source | None:
    """A verified plain backup in the tree holding these bytes, or None."""
    if sha256 is None:
        return None
    for row in index.changes.holding(sha256, size):
        if row.compressed or stored.problem(tree, index, row) is not None:
            continue
        return Source(tree / str(row.stored), row.blob if row.blob is not None else row.seq)
    return None


def link(original: Path, sha256: str | None, found: Source, dest: Path) -> bool:
    """Make ``dest`` a hard link to ``found`` if ``original`` (a target, or a file
    ``backups.create`` or ``migrate`` copies) still holds the planned bytes ``sha256``;
    False when it could not (the caller copies instead)."""
    try:
        now = fsio.read_state(original)
    except OSError:
        return False
    if sha256 is None or now.sha256 != sha256:
        return False  # the copy will find the change and fail the run, as it always did
    try:
        os.link(found.path, dest)
    except OSError as err:
        log.debug("cannot link %s to %s (%s); copying instead", dest, found.path, err)
        return False
    log.debug("backup %s: a hard link to %s (same bytes)", dest, found.path)
    return True
