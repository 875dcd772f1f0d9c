"""``Changes.usage``: logical and physical bytes from the index alone, each shared file
counted once per category and once for the tree (issue 13, "Status")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from deploy.states import ChangeState, RunKind
from deploy.store.index import Index


def rows(index: Index, spec: list[tuple[str, int, int | None, bool, int | None]],
         project: str = "p") -> list[int]:
    """Backups (category, size, blob as an index into spec, compressed, stored size)."""
    with index.transaction():
        run = index.runs.add(RunKind.DEPLOY, "t", "t", 1, "2026-12-01T00:00", ["scripts"],
                             project=project)
        seqs: list[int] = []
        for k, (category, size, blob, zst, stored) in enumerate(spec):
            seq = index.changes.add(
                run=run, category=category, key=f"k{k}", target=f"/{project}/{k}", action="update",
                backup=f"{category}/{project}{k}", old_sha256=f"{k:064x}", old_size=size,
                old_mode=0o644, created=f"2026-12-01T00:00:{k:02d}", created_ts=float(k),
                state=ChangeState.APPLIED)
            seqs.append(seq)
            if blob is not None or zst:
                index.changes.set_stored(seq, compressed=zst, stored_size=stored or size,
                                         blob=seqs[blob] if blob is not None else None)
    return seqs


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    """A fresh index, closed after the test (an unclosed connection is a ResourceWarning,
    an error under filterwarnings = error, wherever Python 3.13 collects it)."""
    with closing(Index(tmp_path / "index.sqlite")) as opened:
        yield opened


def test_each_shared_file_counts_once_per_category_and_for_the_tree(index: Index) -> None:
    """A link within a category is free; a link across categories costs its category but
    not the tree; a link whose writer was compressed since still holds the plain file;
    a .zst counts its stored size."""
    rows(index, [
        ("scripts", 100, None, False, None),     # 0: own file, 100
        ("scripts", 100, 0, False, None),        # 1: a link to 0: free
        ("templates", 100, 0, False, None),      # 2: a link to 0 from another category
        ("scripts", 300, None, True, 30),        # 3: its own .zst, 30
        ("scripts", 300, 3, False, None),        # 4: a link to 3's plain file, now 3 is .zst
        ("scripts", 300, 3, True, 30),           # 5: a link to 3's .zst: free
    ])

    usage, tree = index.changes.usage()

    n, logical, physical, zst, oldest, newest = usage["scripts"]
    assert (n, logical, zst) == (5, 1100, 2)
    assert physical == 100 + 30 + 300
    assert usage["templates"][:3] == (1, 100, 100)
    assert tree == 100 + 30 + 300
    assert (oldest, newest) == ("2026-12-01T00:00:00", "2026-12-01T00:00:05")
    assert index.changes.usage("another project")[0] == {}


def test_a_project_counts_its_own_backups_and_the_tree_everyones(index: Index) -> None:
    """With one project's runs only, its figures are the whole index's (the fast path);
    once another project has runs, each counts its own and the tree stays everyone's."""
    rows(index, [("scripts", 100, None, False, None), ("templates", 7, None, False, None)])
    alone = index.changes.usage("p")
    assert alone == index.changes.usage()

    rows(index, [("scripts", 1000, None, False, None)], project="q")
    mine, tree = index.changes.usage("p")
    theirs, tree_q = index.changes.usage("q")

    assert mine == alone[0] and tree == tree_q == 1107
    assert theirs["scripts"][:3] == (1, 1000, 1000) and "templates" not in theirs
    assert index.changes.usage()[0]["scripts"][:3] == (2, 1100, 1100)
