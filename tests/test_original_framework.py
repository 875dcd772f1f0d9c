"""The original framework's ``framework/CLAUDE.md``, unchanged (issue 12): its ``{{NAME}}``
placeholders render like the original's plain string replace, the ones it never filled
stay errors unless the config passes them through, and its committed render comes out
byte for byte.

``tests/data/original_placeholders_CLAUDE.md`` is our own text using every placeholder
name of the original (no trailing newline, emoji, ``$PROJECT`` kept as is). The real
files are never in this repository: ``DEPLOY_REAL_FRAMEWORK_FILES`` may name a folder
holding reference copies, and the tests that need them skip otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy import context
from tests.conftest import BASE_CONFIG, Project, assert_one_error_line
from tests.test_claude_md_version import deploy_at

DATA = Path(__file__).resolve().parent / "data"
FIXTURE = DATA / "original_placeholders_CLAUDE.md"
# What the original's default path (parent_directory_manager) filled; nothing filled the rest.
FILLED = ("CLAUDE_MD_VERSION", "FRAMEWORK_VERSION", "DEPLOYMENT_DATE", "DEPLOYMENT_DIR",
          "PLATFORM", "PYTHON_CMD")
UNFILLED = ("LAST_UPDATED", "CONTENT_HASH", "DEPLOYMENT_ID", "PLATFORM_NOTES",
            "AI_TRACKDOWN_PATH")
PASS_THROUGH = "".join(f'{name} = "{{{{{name}}}}}"\n' for name in UNFILLED)
REAL = os.environ.get("DEPLOY_REAL_FRAMEWORK_FILES")
# The committed renders of v0.8.0 and the values read off them (the research memo, §2).
COMMITTED = {
    "tests_validation_auto-update_CLAUDE.md@v0.8.0.rendered": "2025-07-14T16:31:49.225298",
    "tests_validation_backup-validation_CLAUDE.md@v0.8.0.rendered":
        "2025-07-14T16:01:24.663195",
}
ORIGINAL_DIR = "/Users/masa/Projects/claude-multiagent-pm"


def plain(text: str, values: dict[str, str]) -> str:
    """The original's renderer: replace each ``{{KEY}}`` it has a value for, leave the rest."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def project_with(project: Project, template: bytes, context_toml: str) -> Project:
    project.write({"tpl/CLAUDE.md": template, "versions/FRAMEWORK_VERSION": "012",
                   "versions/VERSION": "0.8.0\n"})
    (project.root / "p").mkdir()
    project.configure("[tool.deploy.context]\n" + context_toml,
                      base=BASE_CONFIG.replace("parents = []", 'parents = ["p"]'))
    return project


def test_fixture_uses_every_placeholder_of_the_original() -> None:
    """The fixture holds each name the original's template used, and no trailing newline."""
    data = FIXTURE.read_bytes()

    for name in (*FILLED, *UNFILLED):
        assert b"{{" + name.encode() + b"}}" in data, name
    assert not data.endswith(b"\n")


def test_placeholders_render_like_plain_substitution(project: Project) -> None:
    """With the built-in values and the never-filled names passed through, the render is
    byte-identical to the original's replace of its six keys."""
    project_with(project, FIXTURE.read_bytes(), PASS_THROUGH)
    stamp = "2026-03-01T10:00:00+01:00"

    deploy_at(project, stamp)

    expected = plain(FIXTURE.read_text(encoding="utf-8"), {
        "CLAUDE_MD_VERSION": "012-001", "FRAMEWORK_VERSION": "012",
        "DEPLOYMENT_DATE": context.local_time(stamp), "DEPLOYMENT_DIR": str(project.root),
        "PLATFORM": os.name, "PYTHON_CMD": "python3"})
    assert (project.root / "p" / "CLAUDE.md").read_bytes() == expected.encode("utf-8")


def test_pinned_values_reproduce_a_render_byte_for_byte(project: Project) -> None:
    """The README's recipe through the CLI: DEPLOYMENT_DATE, DEPLOYMENT_DIR and PLATFORM
    pinned as context keys; a second deploy is nothing to do."""
    values = {"DEPLOYMENT_DATE": "2025-07-14T16:29:37.814042", "DEPLOYMENT_DIR": ORIGINAL_DIR,
              "PLATFORM": "posix"}
    pinned = "".join(f'{k} = "{v}"\n' for k, v in values.items())
    project_with(project, FIXTURE.read_bytes(), pinned + PASS_THROUGH)

    project.ok("deploy.framework")
    again = project.ok("deploy.framework")

    expected = plain(FIXTURE.read_text(encoding="utf-8"), {
        **values, "CLAUDE_MD_VERSION": "012-001", "FRAMEWORK_VERSION": "012",
        "PYTHON_CMD": "python3"})
    assert (project.root / "p" / "CLAUDE.md").read_bytes() == expected.encode("utf-8")
    assert again.stdout.startswith("nothing to do")


def test_unfilled_placeholders_are_one_error_naming_each(project: Project) -> None:
    """Without the pass-through lines every never-filled placeholder is named, with its
    line, in one error line (exit 2), and nothing is written."""
    project_with(project, FIXTURE.read_bytes(), "")
    before = project.snapshot()

    done = project.invoke("deploy.framework")

    assert done.returncode == 2, done.stderr
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    needles = [f"CLAUDE.md:{n}: undefined variable '{name}'"
               for n, line in enumerate(lines, 1) for name in UNFILLED
               if "{{" + name + "}}" in line]
    assert len(needles) == 6
    assert_one_error_line(done.stderr, *needles, 'LAST_UPDATED = "{{LAST_UPDATED}}"')
    assert project.snapshot() == before


@pytest.mark.skipif(not REAL, reason="set DEPLOY_REAL_FRAMEWORK_FILES to a folder with the "
                                     "original's reference files")
@pytest.mark.parametrize("rendered", [pytest.param(name, id=name.split("_")[2])
                                      for name in COMMITTED])
def test_real_template_reproduces_the_committed_render(project: Project, rendered: str) -> None:
    """framework/CLAUDE.md@v0.8.0, deployed with FRAMEWORK_VERSION 012 and the values the
    committed render shows (date, folder) pinned, is that render byte for byte; the serial
    is computed (012-001, a first install)."""
    folder = Path(REAL or "")
    values = {"DEPLOYMENT_DATE": COMMITTED[rendered], "DEPLOYMENT_DIR": ORIGINAL_DIR,
              "PLATFORM": "posix"}
    pinned = "".join(f'{k} = "{v}"\n' for k, v in values.items())
    project_with(project, (folder / "framework_CLAUDE.md@v0.8.0").read_bytes(),
                 pinned + PASS_THROUGH)

    project.ok("deploy.framework")

    assert (project.root / "p" / "CLAUDE.md").read_bytes() == (folder / rendered).read_bytes()
    assert project.ok("deploy.framework").stdout.startswith("nothing to do")


@pytest.mark.skipif(not REAL, reason="set DEPLOY_REAL_FRAMEWORK_FILES to a folder with the "
                                     "original's reference files")
@pytest.mark.parametrize("tag", ["v0.7.5", "v0.8.0"])
def test_real_templates_render_like_plain_substitution(project: Project, tag: str) -> None:
    """Both tags' templates render exactly as the original's replace would, built-ins
    included (v0.7.5 also uses AI_TRACKDOWN_PATH, passed through here)."""
    source = (Path(REAL or "") / f"framework_CLAUDE.md@{tag}").read_bytes()
    project_with(project, source, PASS_THROUGH)
    stamp = "2026-03-01T10:00:00+01:00"

    deploy_at(project, stamp)

    expected = plain(source.decode("utf-8"), {
        "CLAUDE_MD_VERSION": "012-001", "FRAMEWORK_VERSION": "012",
        "DEPLOYMENT_DATE": context.local_time(stamp), "DEPLOYMENT_DIR": str(project.root),
        "PLATFORM": os.name, "PYTHON_CMD": "python3"})
    assert (project.root / "p" / "CLAUDE.md").read_bytes() == expected.encode("utf-8")
