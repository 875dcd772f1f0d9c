"""Config loading: defaults, path resolution, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.config import load
from deploy.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_defaults_resolve_against_home_and_config_folder(tmp_path: Path) -> None:
    """An empty table gives the contract's defaults, ~ under HOME, relative under the file."""
    cfg = load(write(tmp_path, "[tool.deploy]\n"), home=tmp_path / "h")

    assert cfg.state_dir == tmp_path / "h/.claude-pm"
    assert cfg.scripts_target == tmp_path / "h/.local/bin"
    assert cfg.scripts_source == tmp_path / "bin"
    assert (cfg.scripts_include, cfg.scripts_exclude) == (("*",), ())
    assert cfg.framework_install_to == tmp_path / "h/.claude-pm/framework/CLAUDE.md"
    assert cfg.backup.framework_keep == 2 and cfg.backup.integrity_checking


@pytest.mark.parametrize(("text", "needle"), [
    pytest.param("[tool.deploy]\nstate_dri = 'x'\n", "tool.deploy.state_dri", id="top"),
    pytest.param("[tool.deploy.scripts]\nsorce = 'x'\n", "tool.deploy.scripts.sorce",
                 id="section"),
    pytest.param("[tool.deploy.backup]\nframework_keep = true\n", "framework_keep",
                 id="bool-for-int"),
    pytest.param("[[tool.deploy.templates]]\nid = '../x'\nsource = 'a'\ntarget = 'b'\n",
                 "template id", id="template-id"),
    pytest.param("[[tool.deploy.templates]]\nid = 'a'\nsource = 'a'\n", "target",
                 id="template-missing-key"),
    pytest.param("[tool.deploy\n", "not valid TOML", id="syntax"),
])
def test_bad_config_names_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    """Each mistake raises ConfigError (exit 2) naming the key."""
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))

    assert needle in str(caught.value)
    assert caught.value.exit_code == 2


def test_prefix_stages_targets_not_sources(tmp_path: Path) -> None:
    """A prefix moves targets and the state dir under it; sources stay in the checkout."""
    cfg = load(write(tmp_path, "[tool.deploy]\nstate_dir = '/var/pm'\n"),
               prefix=tmp_path / "stage", home=Path("/home/u"))

    assert cfg.state_dir == tmp_path / "stage/var/pm"
    assert cfg.scripts_target == tmp_path / "stage/home/u/.local/bin"
    assert cfg.scripts_source == tmp_path / "bin"


def test_relative_paths_resolve_folders_but_never_a_final_symlink(tmp_path: Path) -> None:
    """A relative path's folders are resolved (a symlinked folder names its real place), but
    its last component is kept as written: a target that is a symlink stays the link, so
    planning refuses it instead of silently writing wherever the link points."""
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to("real")
    (tmp_path / "real" / "elsewhere.conf").write_text("not ours\n")
    (tmp_path / "real" / "t.conf").symlink_to("elsewhere.conf")
    cfg = load(write(tmp_path, "[[tool.deploy.templates]]\nid = 't'\nsource = 't.j2'\n"
                               "target = 'linked/t.conf'\n"
                               "[tool.deploy.scripts]\ntarget = 'linked/../linked'\n"))

    assert cfg.templates[0].target == tmp_path / "real" / "t.conf"
    assert cfg.templates[0].target.is_symlink()
    assert cfg.scripts_target == tmp_path / "real"


def test_a_symlinked_template_target_is_refused(tmp_path: Path) -> None:
    """End to end: the symlink named by a relative target is refused with exit 2."""
    from deploy import templates

    (tmp_path / "t.j2").write_text("x\n")
    (tmp_path / "elsewhere.conf").write_text("not ours\n")
    (tmp_path / "t.conf").symlink_to("elsewhere.conf")
    cfg = load(write(tmp_path, "[tool.deploy]\nstate_dir = 'state'\n"
                               "[[tool.deploy.templates]]\nid = 't'\nsource = 't.j2'\n"
                               "target = 't.conf'\n"))

    with pytest.raises(ConfigError, match="symlink"):
        templates.plan(cfg, None)
    assert (tmp_path / "elsewhere.conf").read_text() == "not ours\n"
