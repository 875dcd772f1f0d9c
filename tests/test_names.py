"""Name checks and the contract's exact backup names."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.errors import BadName
from deploy.names import check_name, check_template_id
from deploy.store.naming import backup_stem, name_key, unique_name

WHEN = datetime(2025, 7, 14, 17, 1, 56, 489000)


@pytest.mark.parametrize("name", [
    pytest.param("../x", id="dotdot-slash"), pytest.param("/etc/passwd", id="absolute"),
    pytest.param("a/b", id="separator"), pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"), pytest.param("-rf", id="dash"),
    pytest.param("x\x00y", id="nul"), pytest.param("", id="empty"),
    pytest.param("x" * 300, id="300-bytes"), pytest.param("é" * 128, id="256-utf8-bytes"),
    pytest.param("a\\b", id="backslash"), pytest.param("a\nb", id="newline"),
])
def test_hostile_names_are_refused(name: str) -> None:
    """Every hostile shape of the contract raises BadName."""
    with pytest.raises(BadName):
        check_name(name)


@given(st.text(min_size=1, max_size=80))
def test_accepted_names_stay_one_component(name: str) -> None:
    """Whatever check_name accepts is exactly one path component, never '.' or '..'."""
    try:
        check_name(name)
    except BadName:
        return
    assert "/" not in name and "\x00" not in name and name not in {".", ".."}
    assert not name.startswith("-")


def test_template_ids_follow_the_contract_pattern() -> None:
    """Template ids must match [A-Za-z0-9][A-Za-z0-9._-]*."""
    assert check_template_id("memory-config.v2") == "memory-config.v2"
    with pytest.raises(BadName):
        check_template_id("_private")
    with pytest.raises(BadName):
        check_template_id("has space")


@pytest.mark.parametrize(("category", "key", "target", "expected"), [
    pytest.param("framework", "framework", "CLAUDE.md",
                 "framework_CLAUDE_md_20250714_170156_489.backup", id="framework"),
    pytest.param("scripts", "claude-pm", "claude-pm", "claude-pm_backup_20250714_170156",
                 id="scripts"),
    pytest.param("versions", "memory", "MEMORY_VERSION", "MEMORY_VERSION_backup_20250714_170156",
                 id="versions"),
    pytest.param("templates", "memory-config", "memory.yaml",
                 "memory-config_20250714_170156.backup", id="templates"),
    pytest.param("parents", "/srv/a", "CLAUDE.md", "CLAUDE.md_20250714_170156.backup",
                 id="parents"),
])
def test_backup_names_match_the_guide(category: str, key: str, target: str,
                                      expected: str) -> None:
    """The five categories are named exactly as the framework's guide defines."""
    stem, suffix = backup_stem(category, name_key(category, key, target), WHEN)

    assert stem + suffix == expected


def test_taken_names_get_a_counter_on_the_stem() -> None:
    """_01, _02 ... go before the .backup suffix."""
    taken = {"x_1.backup", "x_1_01.backup"}

    name = unique_name("x_1", ".backup", taken.__contains__)

    assert name == "x_1_02.backup"


def test_the_longest_derived_names_of_a_longest_name_fit_one_component() -> None:
    """A name of MAX_NAME_BYTES gives backup names and temp names (of the target and of
    its backup) within 255 bytes, with a four-digit counter and a seven-digit pid; a byte
    more is refused."""
    from pathlib import Path

    from deploy import fsio
    from deploy.names import COMPONENT_BYTES, MAX_NAME_BYTES

    longest = "é" * (MAX_NAME_BYTES // 2)  # two bytes each: UTF-8 length, not characters
    subsystem = "m" * MAX_NAME_BYTES
    derived = []
    for category, key, target_name in [("scripts", longest, longest),
                                       ("templates", longest, "t"),
                                       ("versions", subsystem, subsystem.upper() + "_VERSION")]:
        stem, suffix = backup_stem(category, name_key(category, key, target_name), WHEN)
        last = "_9999" + suffix
        backup = unique_name(stem, suffix, lambda name, last=last: not name.endswith(last))
        temp = fsio.temp_path(Path(backup)).name.replace(str(os.getpid()), "4194304")
        derived += [backup, temp, fsio.temp_path(Path(target_name)).name]

    assert max(len(n.encode()) for n in derived) <= COMPONENT_BYTES
    check_name("x" * MAX_NAME_BYTES)
    with pytest.raises(BadName):
        check_name("x" * (MAX_NAME_BYTES + 1))


@pytest.mark.parametrize("name", [
    pytest.param("tab\there", id="tab"), pytest.param("esc\x1b[31m", id="esc"),
    pytest.param("del\x7f", id="del"), pytest.param("c1\x85", id="c1"),
    pytest.param(os.fsdecode(b"bad\xff"), id="not-utf8"),
])
def test_control_characters_and_bad_utf8_are_refused_and_shown_escaped(name: str) -> None:
    """Control characters (C0, DEL, C1) and bytes that are not UTF-8 are refused, and the
    message shows them escaped, never raw."""
    with pytest.raises(BadName) as caught:
        check_name(name, "script name")

    message = str(caught.value)
    assert message.isprintable(), message
    assert "\\" in message
