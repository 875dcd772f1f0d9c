"""Unit tests for deploy.conflict: detection, the four policies and the 3-way merge."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from deploy import conflict, fsio
from deploy.errors import Blocked, ConfigError
from deploy.plan import Plan
from deploy.store import Index, Store, apply, open_session

BASE = b"one\ntwo\nthree\nfour\nfive\n"


def item(target: Path, output: bytes) -> conflict.Rendered:
    return conflict.Rendered("templates", "app", target, output, fsio.sha256_bytes(b"tpl"))


def deploy(store: Store, target: Path, output: bytes, policy: str = "fail") -> None:
    """Write ``output`` to ``target`` through the store, as a deploy run would."""
    with open_session(store, command="test", actor="test") as sess:
        plan = conflict.resolve(sess.index, [item(target, output)], policy, ("templates",))
        apply(sess, plan, kind="deploy")


def resolve(store: Store, target: Path, output: bytes, policy: str) -> Plan:
    with store.reading() as index:
        return conflict.resolve(index, [item(target, output)], policy, ("templates",))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def test_merge_combines_edits_in_different_places(tmp_path: Path) -> None:
    """Edits far apart merge cleanly: the hand edit and the new render both land."""
    edited = BASE.replace(b"one", b"ONE (mine)")
    new = BASE.replace(b"five", b"five and more")

    result = conflict.merge(BASE, edited, new, tmp_path / "t")

    assert result.conflicts == ()
    assert result.output == b"ONE (mine)\ntwo\nthree\nfour\nfive and more\n"


def test_merge_reports_conflicting_hunks(tmp_path: Path) -> None:
    """The same line changed both ways is a conflict whose hunk shows both sides."""
    result = conflict.merge(BASE, BASE.replace(b"three", b"mine"),
                            BASE.replace(b"three", b"theirs"), tmp_path / "t")

    assert len(result.conflicts) == 1
    assert "mine\n=======\ntheirs\n" in result.conflicts[0]


def test_unknown_policy_is_a_config_error() -> None:
    """--on-conflict takes only fail, keep, overwrite or merge."""
    with pytest.raises(ConfigError) as caught:
        conflict.check_policy("ask")

    assert "'ask'" in str(caught.value) and caught.value.exit_code == 2


def test_absent_target_is_created_and_equal_target_is_unchanged(store: Store,
                                                                tmp_path: Path) -> None:
    """No target: a create. A target already holding the render: unchanged, never a conflict."""
    target = tmp_path / "out" / "app.conf"
    created = resolve(store, target, BASE, "fail")
    target.parent.mkdir()
    target.write_bytes(BASE)

    same = resolve(store, target, BASE, "fail")

    assert [c.action for c in created.changes] == ["create"]
    assert created.changes[0].mode == 0o644
    assert same.changes == () and [s.reason for s in same.skips] == ["unchanged"]


def test_target_never_written_by_us_is_a_conflict(store: Store, tmp_path: Path) -> None:
    """An existing file this toolkit never wrote blocks the plan under fail, naming it."""
    target = tmp_path / "app.conf"
    target.write_bytes(b"someone else's\n")

    with pytest.raises(Blocked) as caught:
        resolve(store, target, BASE, "fail")

    assert f"{target}: exists and was not written by this toolkit" in str(caught.value)


def test_policies_on_a_hand_edited_target(store: Store, tmp_path: Path) -> None:
    """After a hand edit: keep skips it, overwrite replaces it keeping its mode, fail blocks."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE + b"hand edit\n")
    target.chmod(0o600)
    new = BASE.replace(b"one", b"uno")

    kept = resolve(store, target, new, "keep")
    overwritten = resolve(store, target, new, "overwrite")
    with pytest.raises(Blocked) as caught:
        resolve(store, target, new, "fail")

    assert kept.changes == () and [s.reason for s in kept.skips] == ["kept"]
    assert overwritten.changes[0].new == new and overwritten.changes[0].mode == 0o600
    assert "edited since run 1 wrote it" in str(caught.value)


def test_merge_policy_merges_against_our_last_render(store: Store, tmp_path: Path) -> None:
    """merge: base is our last render, so the hand edit and the template change combine."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE.replace(b"one", b"one # mine"))

    plan = resolve(store, target, BASE.replace(b"five", b"5"), "merge")

    change = plan.changes[0]
    assert change.note == "merged"
    assert change.new == b"one # mine\ntwo\nthree\nfour\n5\n"
    assert change.render is not None and change.render.output == BASE.replace(b"five", b"5")


def test_merge_conflict_raises_with_hunks(store: Store, tmp_path: Path) -> None:
    """A conflicting merge blocks the plan; the error carries the hunks to show."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE.replace(b"three", b"mine"))

    with pytest.raises(conflict.MergeConflict) as caught:
        resolve(store, target, BASE.replace(b"three", b"theirs"), "merge")

    assert str(target) in str(caught.value) and caught.value.exit_code == 3
    assert "mine\n=======\ntheirs\n" in caught.value.details


def test_merge_without_an_earlier_render_is_blocked(store: Store, tmp_path: Path) -> None:
    """A file we never rendered has no merge base: merge refuses instead of guessing."""
    target = tmp_path / "app.conf"
    target.write_bytes(b"theirs\n")

    with pytest.raises(Blocked) as caught:
        resolve(store, target, BASE, "merge")

    assert "no earlier render to merge against" in str(caught.value)


def test_merged_edits_survive_later_deploys(store: Store, tmp_path: Path) -> None:
    """Once merged, the file keeps the user's edit: an unchanged template leaves it alone and
    a changed one merges again, instead of silently dropping the edit."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE.replace(b"one", b"one # mine"))
    deploy(store, target, BASE.replace(b"five", b"5"), "merge")

    again = resolve(store, target, BASE.replace(b"five", b"5"), "fail")
    later = resolve(store, target, BASE.replace(b"five", b"5").replace(b"four", b"4"), "fail")

    assert again.changes == () and [s.reason for s in again.skips] == ["unchanged"]
    assert later.changes[0].new == b"one # mine\ntwo\nthree\n4\n5\n"


def test_render_rows_store_the_pure_render_verified_by_sha(store: Store, tmp_path: Path) -> None:
    """The index keeps the render itself (the next merge base), hashed as stored."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE.replace(b"one", b"one # mine"))
    deploy(store, target, BASE.replace(b"five", b"5"), "merge")

    with closing(Index(store.index_path, readonly=True)) as index:
        rows = index.renders.of_key("templates", "app")
        outputs = [index.renders.output("templates", "app", n=r.n) for r in rows]

    assert [r.n for r in rows] == [2, 1]
    assert outputs == [BASE.replace(b"five", b"5"), BASE]
    assert all(fsio.sha256_bytes(o or b"") == r.output_sha256 for o, r in zip(outputs, rows,
                                                                             strict=True))


def test_keep_accepts_the_target_against_the_new_render(store: Store, tmp_path: Path) -> None:
    """keep plans no write but an acceptance: the file as it is, based on the declined render."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    hand = BASE.replace(b"one", b"one # mine")
    target.write_bytes(hand)
    new = BASE.replace(b"five", b"5")

    plan = resolve(store, target, new, "keep")

    (accepted,) = plan.accepts
    assert plan.changes == ()
    assert accepted.current.sha256 == fsio.sha256_bytes(hand)
    assert accepted.render.output == new


def test_a_kept_file_is_ours_and_merged_into_later(store: Store, tmp_path: Path) -> None:
    """Once kept, the same render is nothing to do and a later one merges into the file,
    the declined change staying declined."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE.replace(b"one", b"one # mine"))
    declined = BASE.replace(b"five", b"5")
    deploy(store, target, declined, "keep")

    again = resolve(store, target, declined, "fail")
    later = resolve(store, target, declined.replace(b"three", b"3"), "fail")

    assert again.changes == () and again.accepts == ()
    assert [s.reason for s in again.skips] == ["unchanged"]
    assert later.changes[0].new == b"one # mine\ntwo\n3\nfour\nfive\n"


def test_merge_that_the_file_already_holds_is_accepted(store: Store, tmp_path: Path) -> None:
    """merge with an unchanged render writes nothing but accepts the edited file."""
    target = tmp_path / "app.conf"
    deploy(store, target, BASE)
    target.write_bytes(BASE.replace(b"one", b"one # mine"))

    plan = resolve(store, target, BASE, "merge")

    assert plan.changes == ()
    assert [a.render.output for a in plan.accepts] == [BASE]
    assert [s.reason for s in plan.skips] == ["accepted: it already holds the merge"]


def test_adopt_bases_an_edit_on_the_render_it_was_made_on(store: Store, tmp_path: Path) -> None:
    """adopt: an edit of our render is based on that render, even when the template has
    changed since; a file we never wrote is based on the current render."""
    ours, theirs = tmp_path / "ours.conf", tmp_path / "theirs.conf"
    deploy(store, ours, BASE)
    ours.write_bytes(BASE + b"mine\n")
    theirs.write_bytes(b"not ours\n")
    new = BASE.replace(b"one", b"uno")

    with store.reading() as index:
        plan = conflict.adopt(index, [item(ours, new), item(theirs, new), item(
            tmp_path / "absent.conf", new)], ("templates",))

    assert [(a.target, a.render.output) for a in plan.accepts] == [(ours, BASE), (theirs, new)]
    assert [s.reason for s in plan.skips] == ["absent"]
