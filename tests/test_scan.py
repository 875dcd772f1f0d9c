"""The contract's backup names read back (``deploy.store.scan``) and matched to targets
(``deploy.targets``): every name ``deploy.store.naming`` gives parses back to what made it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy import categories
from deploy.config import load
from deploy.store.naming import backup_stem, category_folder, unique_name
from deploy.store.scan import Parsed, parse
from deploy.targets import targets

NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF,
                              blacklist_characters="/\\"), min_size=1, max_size=40
                ).filter(lambda name: name not in (".", ".."))
WHEN = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2099, 12, 31))


@given(category=st.sampled_from(categories.NAMES), name=NAMES, when=WHEN,
       counter=st.integers(0, 150))
def test_every_name_naming_gives_parses_back(category: str, name: str, when: datetime,
                                             counter: int) -> None:
    """A backup name (with the counter a taken name gets) reads back as its category, the
    name it carries, its time (to the second, or the millisecond for the framework) and
    its counter."""
    cat = categories.get(category)
    stem, suffix = backup_stem(category, name, when)
    tried: list[str] = []

    def taken(candidate: str) -> bool:  # the first ``counter`` names are taken
        tried.append(candidate)
        return len(tried) <= counter

    filename = unique_name(stem, suffix, taken)
    relative = Path(category_folder(category, name), filename)

    parsed = parse(relative)

    stamp = when.replace(microsecond=when.microsecond // 1000 * 1000 if cat.millis else 0)
    assert parsed == Parsed(category, name if "{name}" in cat.stem else "", stamp, counter)


@pytest.mark.parametrize(("relative", "reason"), [
    pytest.param("scripts/stray", "not a backup name of scripts", id="no-stamp"),
    pytest.param("scripts/tool_backup_20261399_120000", "not a date", id="bad-date"),
    pytest.param("scripts/deep/tool_backup_20260101_120000", "lie in scripts/", id="deep"),
    pytest.param("templates/tool_20260101_120000.backup", "templates/<id>/", id="flat"),
    pytest.param("templates/a/b_20260101_120000.backup", "folder of 'a'", id="other-id"),
    pytest.param("framework/framework_CLAUDE_md_20260101_120000.backup",
                 "not a backup name of framework", id="no-millis"),
    pytest.param("versions/MEMORY_VERSION.bak", "not a backup name", id="suffix"),
])
def test_what_is_not_a_contract_name_says_why(relative: str, reason: str) -> None:
    """A file that is not one of the contract's names is refused with the reason."""
    parsed = parse(Path(relative))

    assert isinstance(parsed, str) and reason in parsed, parsed


def test_targets_come_from_the_config(tmp_path: Path) -> None:
    """Scripts go to scripts.target, version files to versions.dir keyed by subsystem (the
    release VERSION as subsystem version),
    templates by id, the framework to install_to; parents are every configured folder's
    CLAUDE.md; names the config cannot place get no entry."""
    config = tmp_path / "deploy.toml"
    config.write_text('[tool.deploy]\nstate_dir = "state"\n[tool.deploy.scripts]\n'
                      'target = "t/bin"\n[tool.deploy.versions]\ndir = "v"\n'
                      '[tool.deploy.framework]\ninstall_to = "t/fw.md"\nparents = ["p1", "p2"]\n'
                      '[[tool.deploy.templates]]\nid = "mem"\nsource = "s.j2"\ntarget = "t/m"\n')
    cfg = load(config)
    asked = {("scripts", "tool"), ("scripts", "-rf"), ("versions", "MEMORY_VERSION"),
             ("versions", "VERSION"), ("templates", "mem"), ("templates", "gone"),
             ("framework", ""), ("parents", "CLAUDE.md"), ("parents", "OTHER.md")}

    found = targets(cfg, asked)

    assert {k: [(t.key, t.path, t.mode) for t in v] for k, v in found.items()} == {
        ("scripts", "tool"): [("tool", tmp_path / "t/bin/tool", 0o755)],
        ("versions", "MEMORY_VERSION"): [("memory", tmp_path / "v/MEMORY_VERSION", None)],
        ("versions", "VERSION"): [("version", tmp_path / "v/VERSION", None)],
        ("templates", "mem"): [("mem", tmp_path / "t/m", None)],
        ("framework", ""): [("framework", tmp_path / "t/fw.md", None)],
        ("parents", "CLAUDE.md"): [(str(tmp_path / "p1"), tmp_path / "p1/CLAUDE.md", None),
                                   (str(tmp_path / "p2"), tmp_path / "p2/CLAUDE.md", None)]}
