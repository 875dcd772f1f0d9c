"""The pure parts of the GitHub Actions reporting (issue 14): step outputs that no value can
forge, workflow-command escaping, Markdown cells, and finding a config key's line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy import tomlkeys
from deploy_tasks.actions import escape_data, escape_property, outputs
from deploy_tasks.summary import cell, code, fenced
from tests.test_actions_cli import parse_outputs

NAMES = ("run", "changed", "outcome", "undo")


@given(st.lists(st.text(), min_size=4, max_size=4))
def test_outputs_round_trip_and_never_forge_a_name(values: list[str]) -> None:
    """Whatever the values hold (newlines, ``name=value`` lines, ``<<``), the runner reads
    back exactly the four names with exactly those values."""
    written = dict(zip(NAMES, values, strict=True))

    text = outputs(written)

    assert parse_outputs(text) == written


def test_a_value_with_a_newline_uses_the_heredoc_form() -> None:
    """A value that could carry a line break is written ``name<<DELIM``."""
    text = outputs({"run": "1", "undo": "invoke rollback.release --run 1\nrun=99"})

    lines = text.splitlines()
    assert lines[0] == "run=1"
    assert lines[1].startswith("undo<<ghadelimiter_")
    assert lines[-1] == lines[1].split("<<")[1]


def unescape(text: str) -> str:
    """As the runner reads a workflow command (actions/runner's ActionCommand)."""
    for escaped, raw in (("%3A", ":"), ("%2C", ","), ("%0D", "\r"), ("%0A", "\n"),
                         ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


@given(st.text())
def test_workflow_command_escaping_round_trips(text: str) -> None:
    """Data and property values come back as given, and hold no line break, and a property
    no ``,`` or ``:`` that would end it."""
    data, prop = escape_data(text), escape_property(text)

    assert unescape(data) == text and unescape(prop) == text
    assert "\n" not in data and "\r" not in data
    assert "," not in prop and ":" not in prop


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("a|b", "a\\|b", id="pipe"),
    pytest.param("<img src=x>", "&lt;img src=x&gt;", id="html"),
    pytest.param("line\nbreak", "line\\\\nbreak", id="newline"),
])
def test_a_cell_keeps_to_its_cell(value: str, expected: str) -> None:
    """A table cell: escaped, no pipe or HTML of its own."""
    assert cell(value) == expected


def test_code_takes_a_longer_fence_than_its_backticks() -> None:
    """A name with backticks as inline code: a fence of one more backtick, pipes escaped."""
    assert code("plain") == "`plain`"
    assert code("a``b|c") == "``` a``b\\|c ```"


def test_a_fenced_block_cannot_be_closed_from_inside() -> None:
    """Free text with a ``` line: the block's fence is longer."""
    block = fenced("before\n```\nafter")

    assert block[0] == "````text" and block[-1] == "````"
    assert block[2] == "```"


CONFIG = '''\
[tool.deploy]
state_dir = "state"   # [tool.deploy.backup] in a comment
notes = """
[tool.deploy.backup]
retention_days = 1
"""

[tool.deploy.scripts]
include = [
  "a = b",
]
exclude = []

[[tool.deploy.templates]]
id = "a"

[[tool.deploy.templates]]
id = "b"
"source" = "s"

[tool.deploy.backup]
retention_days = -1
scripts.max_backups_per_type = 0
'''


@pytest.mark.parametrize(("key", "line"), [
    pytest.param("tool.deploy.state_dir", 2, id="top-level"),
    pytest.param("tool.deploy.backup.retention_days", 22, id="past-a-multiline-string"),
    pytest.param("tool.deploy.scripts.exclude", 12, id="past-a-multiline-array"),
    pytest.param("tool.deploy.templates[1].source", 19, id="array-of-tables-quoted-key"),
    pytest.param("tool.deploy.templates[0]", 14, id="array-entry"),
    pytest.param("tool.deploy.templates[0].target", 14, id="missing-key-its-entry"),
    pytest.param("tool.deploy.backup.scripts.max_backups_per_type", 23, id="dotted-key"),
    pytest.param("tool.deploy.backup.scripts", 23, id="table-of-a-dotted-key"),
    pytest.param("tool.deploy.context", 1, id="absent-table-its-parent"),
    pytest.param("tool.nothing", None, id="not-in-the-file"),
])
def test_key_line(key: str, line: int | None) -> None:
    """The line that sets a key as messages name it, or the nearest table that holds it."""
    assert tomlkeys.key_line(CONFIG, key) == line


def test_message_key_and_decode_line() -> None:
    """The key a message names; the line a tomllib error names."""
    assert tomlkeys.message_key("tool.deploy.templates[2].id must be a string") \
        == "tool.deploy.templates[2].id"
    assert tomlkeys.message_key("no [tool.deploy] table") is None
    assert tomlkeys.decode_line("Invalid value (at line 16, column 18)") == 16
    assert tomlkeys.decode_line("Invalid value (at end of document)") is None


def test_every_message_key_of_the_config_module_parses() -> None:
    """The keys deploy.config's messages name (``{where}.x``, ``[{i}]``) match the pattern
    the annotation looks them up by."""
    assert re.fullmatch(tomlkeys.MESSAGE_KEY, "tool.deploy.backup.max_backups_per_type")
    assert re.fullmatch(tomlkeys.MESSAGE_KEY, "tool.deploy.templates[10].target")


def test_a_run_that_fails_after_it_opened_names_it_in_the_error_document(
        tmp_path: Path) -> None:
    """A write that fails once the run is recorded (a failed rename, injected in process):
    the ``--json`` error document carries that run's id, and the run is recorded failed."""
    import errno
    import json

    from tests.reliability import harness
    from tests.reliability.faults import Injector

    root = tmp_path / "p"
    harness.base_project(root)
    harness.write_files(root, {"bin/tool": harness.script(1)})
    assert harness.run_task(root, "deploy.scripts").ok
    harness.write_files(root, {"bin/tool": harness.script(2)})

    with Injector("os.replace", 1, errno.EIO).active():
        failed = harness.run_task(root, "deploy.scripts", {"json_": True})

    assert failed.code == 1, failed.stderr
    document = json.loads(failed.stdout)
    assert document["run"] == 2 and document["error"]["exit_code"] == 1
    listed = json.loads(harness.run_task(root, "history", {"json_": True}).stdout)
    assert [r["state"] for r in listed["runs"]] == ["failed", "done"]


def test_a_long_summary_folds_and_stops_at_its_row_limit() -> None:
    """Past FOLD_OVER rows the table folds into <details>; past MAX_ROWS it stops, saying
    how many more there are (GitHub takes at most 1 MiB of summary per step)."""
    from deploy_tasks import summary
    from deploy_tasks.actions import Report, Row

    report = Report("deploy.scripts", writes=True, json_=False, prefix=None)
    report.run = 1
    report.rows = [Row("create", f"/t/{i}", None, i) for i in range(summary.MAX_ROWS + 7)]

    text = summary.section(report, "changed", exit_code=0, run=1, undo="", message=None,
                           problems=(), provenance=None)

    assert f"<details><summary>{summary.MAX_ROWS + 7} target(s)</summary>" in text
    assert text.count("| create |") == summary.MAX_ROWS
    assert "and 7 more" in text
