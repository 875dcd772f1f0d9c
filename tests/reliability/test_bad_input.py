"""Hostile input: bad names, symlinks, a corrupt index, a tampered backup, a bad config, a
broken template and a garbage version file. Each is refused with one clear error line and
leaves every original where it was."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.reliability import harness, ledger
from tests.reliability import invariants as inv
from tests.reliability.harness import Outcome, cli


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """A project whose scripts were deployed once and then changed."""
    root = tmp_path / "p"
    harness.prep_scripts(root, harness.run_task)
    return root


def refused(root: Path, out: Outcome, before: inv.Files, code: int, *names: str,
            what: str) -> None:
    """The run exits ``code`` with one error line naming ``names``; no file outside the
    state dir changed."""
    found = inv.check_clear_error(out.code, out.stderr, names=names[:1] or ())
    found += [inv.Violation(inv.CLEAR_ERROR, f"does not name {n!r}: {out.stderr}")
              for n in names[1:] if n not in out.stderr]
    if out.code != code:
        found.append(inv.Violation(inv.CLEAR_ERROR, f"exit {out.code}, want {code}"))
    found += inv.check_no_torn(before, before, inv.file_states(root))
    found += inv.check_clean(root, root / "state" / "backups")
    ledger.record(f"bad input: {what}", found)
    assert not found, "\n".join(map(str, found))


@pytest.mark.parametrize("name", [
    pytest.param("../escape", id="dotdot"), pytest.param("/etc/passwd", id="absolute"),
    pytest.param("-rf", id="dash"), pytest.param("", id="empty"),
    pytest.param("a\nb", id="newline"), pytest.param("x" * 300, id="long")])
@pytest.mark.parametrize("task", ["deploy.scripts", "rollback.scripts"])
def test_hostile_names_exit_2_write_nothing(proj: Path, task: str, name: str) -> None:
    """A hostile --name is refused before anything is written."""
    before = inv.file_states(proj)
    rows = inv.read_rows(proj / "state" / "backups")

    out = cli(proj, task, {"name": [name]})

    refused(proj, out, before, 2, "name", what="hostile names")
    assert inv.read_rows(proj / "state" / "backups") == rows


def test_symlinked_target_is_refused_never_followed(proj: Path, tmp_path: Path) -> None:
    """Policy (deploy.plan.target_state): a target that is a symlink is refused, exit 2;
    the link and what it points to stay as they are."""
    outside = tmp_path / "outside"
    outside.write_text("precious\n")
    target = proj / "target" / "bin" / "alpha"
    target.unlink()
    target.symlink_to(outside)
    before = inv.file_states(proj)

    out = cli(proj, "deploy.scripts")

    refused(proj, out, before, 2, str(target), "symlink", what="symlinked target")
    assert outside.read_text() == "precious\n" and target.is_symlink()


def test_symlinked_backup_folder_is_refused(proj: Path, tmp_path: Path) -> None:
    """A backup folder replaced by a symlink is refused; nothing is written through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = proj / "state" / "backups" / "scripts"
    os.rename(folder, tmp_path / "moved")
    folder.symlink_to(elsewhere)
    before = inv.file_states(proj)

    out = cli(proj, "deploy.scripts")

    assert out.code != 0
    refused(proj, out, before, out.code, str(folder), "symlink", what="symlinked backup folder")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_corrupt_index_is_a_clear_error(proj: Path, damage: str) -> None:
    """A corrupt or truncated index stops the run with one error line; originals intact."""
    index = proj / "state" / "backups" / "index.sqlite"
    data = index.read_bytes()
    if damage == "random":
        index.write_bytes(random.Random(4).randbytes(len(data)))
    else:
        index.write_bytes(data[: len(data) // 3])
    before = inv.file_states(proj)

    outs = [cli(proj, "deploy.scripts"), cli(proj, "rollback.scripts"), cli(proj, "history")]

    for out in outs:
        refused(proj, out, before, 1, str(index), what=f"{damage} index")


def test_flipped_byte_in_backup_stops_rollback(proj: Path) -> None:
    """A backup whose bytes changed: rollback exits 1 naming it, the target is untouched."""
    assert cli(proj, "deploy.scripts").code == 0
    rows = [r for r in inv.read_rows(proj / "state" / "backups") or () if r["backup"]]
    backup = proj / "state" / "backups" / str(rows[-1]["backup"])
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x01
    backup.write_bytes(bytes(data))
    before = inv.file_states(proj)

    out = cli(proj, "rollback.scripts")

    refused(proj, out, before, 1, str(backup), what="flipped byte in a backup")


@pytest.mark.parametrize(("extra", "key"), [
    pytest.param('[tool.deploy.backup]\nretention_days = "30"\n', "retention_days", id="type"),
    pytest.param('[tool.deploy.backup]\nretention_dayz = 30\n', "retention_dayz", id="unknown"),
    pytest.param('[tool.deploy.scripts]\nsource = 3\n', "source", id="scripts-type"),
    pytest.param('[tool.deploy]\nstate_dri = "x"\n', "state_dri", id="top-unknown"),
])
def test_bad_config_exits_2_naming_the_key(proj: Path, extra: str, key: str) -> None:
    """Wrong types and unknown keys exit 2 naming the key."""
    cfg = proj / "bad.toml"
    cfg.write_text(extra)
    before = inv.file_states(proj)

    out = cli(proj, "deploy.scripts", env={"DEPLOY_CONFIG": str(cfg)})

    refused(proj, out, before, 2, str(cfg), key, what="bad config")


@pytest.mark.skipif(not harness.has_task("deploy.templates"), reason="no templates yet")
def test_template_syntax_error_writes_nothing(tmp_path: Path) -> None:
    """A template with a syntax error stops deploy.templates (and deploy) before any write."""
    root = tmp_path / "p"
    harness.prep_templates(root, harness.run_task)
    harness.write_files(root, {"tpl/agents.md.j2": "{% if %}broken\n"})
    before = inv.file_states(root)

    for task in ("deploy.templates", "deploy"):
        out = cli(root, task)

        refused(root, out, before, 2, str(root / "tpl" / "agents.md.j2"),
                what="template syntax error")


@pytest.mark.skipif(not harness.has_task("versions.bump"), reason="no versions yet")
def test_garbage_version_file_is_refused(tmp_path: Path) -> None:
    """A version file holding garbage stops a bump with one error naming the file."""
    root = tmp_path / "p"
    harness.prep_versions(root, harness.run_task)
    harness.write_files(root, {"versions/MEMORY_VERSION": b"\x00\xff garbage ~~\n"})
    before = inv.file_states(root)

    out = cli(root, "versions.bump", {"subsystem": "memory"})

    refused(root, out, before, 2, str(root / "versions" / "MEMORY_VERSION"),
            what="garbage version file")
