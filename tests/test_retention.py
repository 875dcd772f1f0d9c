"""Retention decides from the index's sequence numbers, times and runs, never from mtimes:
each verdict of ``deploy.retention.verdicts`` with its rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.config import BackupSettings, CategoryLimits, load
from deploy.errors import ConfigError
from deploy.retention import DAY, limits, verdicts
from deploy.store.index import ChangeRow, RunRow

NOW = 1_800_000_000.0


def row(seq: int, target: str = "/t", age_days: float = 0, category: str = "scripts", *,
        run: int | None = None, state: str = "applied", undone_by: int | None = None,
        backup: bool = True, pruned: int = 0) -> ChangeRow:
    return ChangeRow(seq=seq, run=seq if run is None else run, category=category, key="k",
                     target=target, action="update" if backup else "create",
                     backup=f"{category}/b{seq}" if backup else None, old_sha256="x",
                     old_size=1, old_mode=0o644, new_sha256="y", new_size=1, new_mode=0o644,
                     created="", created_ts=NOW - age_days * DAY, state=state,
                     undone_by=undone_by, reverts=None, pruned=pruned)


def run(id_: int, state: str = "done", kind: str = "deploy", kept: int | None = None,
        project: str | None = "p") -> RunRow:
    return RunRow(id=id_, kind=kind, actor="a", command="c", pid=1, started="",
                  finished="", state=state, undoes=None, categories="scripts",
                  project=project, kept=kept)


def rules(rows: list[ChangeRow], runs: list[RunRow], settings: BackupSettings,
          ) -> dict[int, str]:
    return {v.id: v.rule for v in verdicts(rows, runs, settings, NOW)}


def undone(rows: list[ChangeRow]) -> list[ChangeRow]:
    """Mark every row but the newest undone, so the latest-run rule picks only the newest."""
    last = max(r.seq for r in rows)
    return [r._replace(undone_by=999) if r.seq != last else r for r in rows]


def test_keeps_newest_by_sequence_per_target() -> None:
    """Beyond max per target, the lowest sequence numbers go, whatever their times say."""
    rows = [*undone([row(1, age_days=0), row(2, age_days=5), row(3, age_days=1)]),
            row(4, "/u")]

    found = rules(rows, [run(i) for i in (1, 2, 3, 4)], BackupSettings(max_backups_per_type=2))

    assert found == {1: "too-many", 2: "within", 3: "newest", 4: "newest"}


def test_old_backups_go_but_the_newest_stays() -> None:
    """Older than retention_days may go, but never a target's newest backup."""
    rows = undone([row(1, age_days=90), row(2, age_days=60), row(3, age_days=1)])
    lone = [row(7, "/lone", age_days=400)]

    found = rules(rows + lone, [run(i) for i in (1, 2, 3, 7)], BackupSettings(retention_days=30))

    assert found == {1: "too-old", 2: "too-old", 3: "newest", 7: "newest"}


def test_framework_uses_framework_keep() -> None:
    """Framework backups keep framework_keep (2), newest by sequence."""
    rows = undone([row(i, "/fw", category="framework") for i in (5, 9, 7, 3)])

    found = rules(rows, [run(i) for i in (3, 5, 7, 9)], BackupSettings(framework_keep=2))

    assert found == {3: "too-many", 5: "too-many", 7: "within", 9: "newest"}


def test_the_latest_not_undone_run_keeps_all_its_backups() -> None:
    """The run a step-back rollback would undo keeps every backup it holds, even one past
    count and age, and in another category too."""
    rows = [row(1, "/a", age_days=90, run=1), row(2, "/a", run=2),
            row(3, "/b", age_days=90, run=1, category="versions")]

    found = rules(rows, [run(1), run(2, kind="rollback")],
                  BackupSettings(max_backups_per_type=1, retention_days=30))

    assert found == {1: "latest", 2: "newest", 3: "newest"}


def test_step_back_keeps_what_the_next_rollbacks_need() -> None:
    """A rollback's backup uses up the count, but the runs step-back would undo next, up to
    max_backups_per_type of them, keep theirs; past max they go."""
    rows = [row(1, run=1), row(2, run=2), row(3, run=3, undone_by=4), row(4, run=4),
            row(5, run=5), row(6, run=6)]
    runs = [run(1), run(2), run(3, state="undone"), run(4, kind="rollback"), run(5), run(6)]

    found = rules(rows, runs, BackupSettings(max_backups_per_type=3))

    # Step-back undoes 6, then 5, then 2 (3 is undone, 4 a rollback): three steps.
    assert found == {1: "too-many", 2: "step-back", 3: "too-many", 4: "within",
                     5: "step-back", 6: "newest"}


def test_step_back_stops_at_a_run_it_cannot_undo() -> None:
    """Past a run whose backup is already gone, step-back promises nothing."""
    rows = [row(1, run=1), row(2, run=2, pruned=1), row(3, run=3, undone_by=9),
            row(4, run=4, undone_by=9), row(5, run=5)]

    found = rules(rows, [run(i) for i in (1, 2, 3, 4, 5)], BackupSettings(max_backups_per_type=3))

    assert found[1] == "too-many"


def test_failed_and_interrupted_runs_do_not_use_up_the_count() -> None:
    """Three failed runs after two good ones leave both good backups within the count."""
    rows = undone([row(1), row(2), row(3, state="reverted"), row(4, state="reverted"),
                   row(5, state="reverted"), row(6)])
    runs = [run(1), run(2), run(3, "failed"), run(4, "interrupted"), run(5, "failed"), run(6)]

    found = rules(rows, runs, BackupSettings(max_backups_per_type=3))

    assert found == {1: "within", 2: "within", 3: "within", 4: "within", 5: "within",
                     6: "newest"}


def test_a_kept_run_keeps_its_backups_past_count_and_age() -> None:
    rows = undone([row(1, age_days=400), row(2, age_days=400), row(3)])

    found = rules(rows, [run(1, kept=1), run(2), run(3)],
                  BackupSettings(max_backups_per_type=1, retention_days=1))

    assert found == {1: "kept-run", 2: "too-old", 3: "newest"}


def test_a_category_table_overrides_the_top_level_settings() -> None:
    """[tool.deploy.backup.versions] max and days apply to versions only."""
    scripts = undone([row(i, "/s", run=i) for i in (1, 2, 3)])
    versions = undone([row(i, "/v", category="versions", run=i) for i in (11, 12, 13)])
    settings = BackupSettings(max_backups_per_type=1,
                              categories=(("versions", CategoryLimits(None, 3)),))

    found = rules(scripts + versions, [run(i) for i in (1, 2, 3, 11, 12, 13)], settings)

    assert found == {1: "too-many", 2: "too-many", 3: "newest", 11: "within", 12: "within",
                     13: "newest"}


def test_rows_without_backups_and_pruned_rows_get_no_verdict() -> None:
    """A created target's row is a step of the chain but holds nothing to judge."""
    rows = [row(1, backup=False), row(2, pruned=1), row(3)]

    found = rules(rows, [run(i) for i in (1, 2, 3)], BackupSettings())

    assert found == {3: "newest"}


def test_category_tables_are_read_from_the_config(tmp_path: Path) -> None:
    """[tool.deploy.backup.<category>] lands in BackupSettings.categories; a top-level key
    given as a table is a type error naming it, not an unknown category."""
    config = tmp_path / "deploy.toml"
    config.write_text("[tool.deploy.backup]\nauto_prune = true\n"
                      "[tool.deploy.backup.parents]\nretention_days = 7\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[tool.deploy.backup.retention_days]\nx = 1\n")

    backup = load(config).backup
    with pytest.raises(ConfigError) as err:
        load(bad)

    assert backup.auto_prune is True
    assert backup.limits("parents") == CategoryLimits(7, None)
    assert limits(backup, "parents") == (7, 10) and limits(backup, "framework") == (30, 2)
    assert "tool.deploy.backup.retention_days must be an integer" in str(err.value)
