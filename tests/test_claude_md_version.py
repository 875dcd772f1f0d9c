"""The original framework's deployment variables, and each parent's CLAUDE_MD_VERSION:
``<FRAMEWORK_VERSION>-<NNN>``, 001 first, kept while nothing but version and date lines
would change, +1 when the content changes, 001 again on a new FRAMEWORK_VERSION."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from deploy import context, framework, release
from deploy.config import load
from deploy.store import Store, apply, open_session
from tests.conftest import BASE_CONFIG, Project

TEMPLATE = """\
<!--
CLAUDE_MD_VERSION: {{CLAUDE_MD_VERSION}}
FRAMEWORK_VERSION: {{FRAMEWORK_VERSION}}
DEPLOYMENT_DATE: {{DEPLOYMENT_DATE}}
-->
# Working rules for {{ parent_dir }}
Written {{ deployed_at }} by {{PYTHON_CMD}} on {{PLATFORM}} from {{DEPLOYMENT_DIR}}.
Rule one: delegate.
"""
STAMPS = [f"2026-03-0{day}T10:00:00+01:00" for day in range(1, 10)]
VERSION_LINE = re.compile(r"CLAUDE_MD_VERSION: (\S+)")


def with_parents(project: Project, *parents: str, extra: str = "") -> None:
    listed = ", ".join(f'"{p}"' for p in parents)
    project.configure(extra, base=BASE_CONFIG.replace("parents = []", f"parents = [{listed}]"))
    for parent in parents:
        (project.root / parent).mkdir(exist_ok=True)


def fw(project: Project, *parents: str, extra: str = "") -> Project:
    project.write({"tpl/CLAUDE.md": TEMPLATE, "versions/FRAMEWORK_VERSION": "012",
                   "versions/VERSION": "0.8.0\n", "versions/MEMORY_VERSION": "003\n"})
    with_parents(project, *(parents or ("p1",)), extra=extra)
    return project


def deploy_at(project: Project, stamp: str) -> list[str]:
    """``deploy.framework`` in process with the run stamped ``stamp``; the parent folders'
    changed targets (none at all: nothing written, no run)."""
    cfg = load(project.config_path)
    with Store(cfg.state_dir).reading() as index:
        planned = framework.plan(cfg, index, on_conflict="overwrite", stamp=stamp)
    if not planned.changes:
        return []
    with open_session(Store(cfg.state_dir), command="test", actor="test") as sess:
        applied = apply(sess, framework.plan(cfg, sess.index, on_conflict="overwrite",
                                             stamp=stamp), kind="deploy")
    return [str(a.target) for a in applied.changes if a.category == "parents"]


def version_of(project: Project, parent: str = "p1") -> str:
    match = VERSION_LINE.search((project.root / parent / "CLAUDE.md").read_text())
    assert match is not None
    return match.group(1)


def test_the_originals_variables_under_their_own_names(project: Project) -> None:
    """FRAMEWORK_VERSION is the FRAMEWORK_VERSION file (stripped), DEPLOYMENT_DATE the run's
    local time without an offset, DEPLOYMENT_DIR the config's folder, PLATFORM os.name,
    PYTHON_CMD python3; the first render of a parent is 012-001."""
    fw(project)

    deploy_at(project, STAMPS[0])

    text = (project.root / "p1" / "CLAUDE.md").read_text()
    assert text == (
        "<!--\nCLAUDE_MD_VERSION: 012-001\nFRAMEWORK_VERSION: 012\n"
        "DEPLOYMENT_DATE: 2026-03-01T10:00:00\n-->\n"
        f"# Working rules for {project.root / 'p1'}\n"
        f"Written {STAMPS[0]} by python3 on {os.name} from {project.root}.\n"
        "Rule one: delegate.\n")


def test_framework_version_falls_back_to_version(project: Project) -> None:
    """Without a FRAMEWORK_VERSION file, FRAMEWORK_VERSION is VERSION's content."""
    fw(project)
    (project.root / "versions/FRAMEWORK_VERSION").unlink()

    cfg = load(project.config_path)
    variables = context.variables(cfg, STAMPS[0])

    assert variables["FRAMEWORK_VERSION"] == "0.8.0"


def test_context_keys_override_the_originals_variables(project: Project) -> None:
    """A context key replaces an original-name variable (the lower-case built-ins stay
    refused): a pinned CLAUDE_MD_VERSION and DEPLOYMENT_DATE render as given."""
    fw(project, extra="""
        [tool.deploy.context]
        CLAUDE_MD_VERSION = "4.6.0-007"
        DEPLOYMENT_DATE = "2025-07-14T16:31:49.225298"
        PLATFORM = "darwin"
        """)

    deploy_at(project, STAMPS[0])

    text = (project.root / "p1" / "CLAUDE.md").read_text()
    assert "CLAUDE_MD_VERSION: 4.6.0-007\n" in text
    assert "DEPLOYMENT_DATE: 2025-07-14T16:31:49.225298\n" in text
    assert " on darwin " in text


def test_serial_stays_while_nothing_changes_and_steps_when_the_content_does(
        project: Project) -> None:
    """Later runs (new stamps) change nothing, even when a variable the template does not
    show changes (no cache hit: a full render keeps the earlier stamp and serial); a
    template change is 002 with the new date; a new FRAMEWORK_VERSION starts at 001."""
    fw(project)
    target = project.root / "p1" / "CLAUDE.md"
    assert deploy_at(project, STAMPS[0]) == [str(target)]
    first = target.read_bytes()

    assert deploy_at(project, STAMPS[1]) == []
    project.write({"versions/MEMORY_VERSION": "004\n"})  # a variable the template ignores
    assert deploy_at(project, STAMPS[2]) == []
    assert target.read_bytes() == first

    project.write({"tpl/CLAUDE.md": TEMPLATE + "Rule two: verify.\n"})
    assert deploy_at(project, STAMPS[3]) == [str(target)]
    assert version_of(project) == "012-002"
    assert "DEPLOYMENT_DATE: 2026-03-04T10:00:00\n" in target.read_text()
    assert deploy_at(project, STAMPS[4]) == []

    project.write({"versions/FRAMEWORK_VERSION": "013"})
    assert deploy_at(project, STAMPS[5]) == [str(target)]
    assert version_of(project) == "013-001"
    assert "FRAMEWORK_VERSION: 013\n" in target.read_text()
    assert deploy_at(project, STAMPS[6]) == []


def test_deployment_date_alone_is_kept_like_deployed_at(project: Project) -> None:
    """A template that shows DEPLOYMENT_DATE (no offset) but not deployed_at keeps it too
    when a full render is needed and nothing it shows changed."""
    fw(project)
    project.write({"tpl/CLAUDE.md": "{{CLAUDE_MD_VERSION}} at {{DEPLOYMENT_DATE}}\n"})
    deploy_at(project, STAMPS[0])

    project.write({"versions/MEMORY_VERSION": "004\n"})  # the digest changes: no cache hit
    changed = deploy_at(project, STAMPS[1])

    assert changed == []
    assert (project.root / "p1/CLAUDE.md").read_text() == "012-001 at 2026-03-01T10:00:00\n"


def test_a_date_line_alone_keeps_the_serial(project: Project) -> None:
    """A pinned DEPLOYMENT_DATE that changes rewrites its line but keeps the serial: only
    the version and date lines differ (the original's normalised comparison)."""
    pinned = '[tool.deploy.context]\nDEPLOYMENT_DATE = "{}"\n'
    fw(project, extra=pinned.format("2025-07-14T16:31:49.225298"))
    deploy_at(project, STAMPS[0])

    with_parents(project, "p1", extra=pinned.format("2025-07-15T09:00:00"))
    changed = deploy_at(project, STAMPS[1])

    assert changed and version_of(project) == "012-001"
    assert "DEPLOYMENT_DATE: 2025-07-15T09:00:00\n" in (project.root / "p1/CLAUDE.md").read_text()


def test_each_parent_has_its_own_serial(project: Project) -> None:
    """A folder added later starts at 001 while the first keeps its own serial."""
    fw(project)
    deploy_at(project, STAMPS[0])
    project.write({"tpl/CLAUDE.md": TEMPLATE + "Rule two: verify.\n"})
    deploy_at(project, STAMPS[1])

    with_parents(project, "p1", "p2")
    changed = deploy_at(project, STAMPS[2])

    assert changed == [str(project.root / "p2" / "CLAUDE.md")]
    assert (version_of(project, "p1"), version_of(project, "p2")) == ("012-002", "012-001")


def test_redeploy_after_a_rollback_brings_back_the_same_render(project: Project) -> None:
    """After rollback.parents the target holds render 1; deploying the changed template
    again writes render 2's exact bytes (its serial and date), not a third serial."""
    fw(project)
    deploy_at(project, STAMPS[0])
    project.write({"tpl/CLAUDE.md": TEMPLATE + "Rule two: verify.\n"})
    deploy_at(project, STAMPS[1])
    second = (project.root / "p1" / "CLAUDE.md").read_bytes()
    project.ok("rollback.parents")
    assert version_of(project) == "012-001"

    deploy_at(project, STAMPS[2])

    assert (project.root / "p1" / "CLAUDE.md").read_bytes() == second


def test_serial_through_the_cli(project: Project) -> None:
    """Through the CLI: a second deploy a second later is "nothing to do" (for
    deploy.framework and the whole release); an edited template is 002; versions.bump
    framework makes 013-001."""
    fw(project)
    project.ok("deploy")
    first = (project.root / "p1" / "CLAUDE.md").read_bytes()
    time.sleep(1.1)  # a new run stamp: DEPLOYMENT_DATE must not move by itself

    again = project.ok("deploy.framework")
    release_again = project.ok("deploy")

    assert again.stdout.startswith("nothing to do")
    assert release_again.stdout.startswith("nothing to do")
    assert (project.root / "p1" / "CLAUDE.md").read_bytes() == first
    project.write({"tpl/CLAUDE.md": TEMPLATE + "Rule two: verify.\n"})
    project.ok("deploy.framework")
    assert version_of(project) == "012-002"
    project.ok("versions.bump", "framework")
    project.ok("deploy.framework")
    assert version_of(project) == "013-001"
    assert project.ok("deploy.framework").stdout.startswith("nothing to do")


def test_a_release_plans_twice_the_same(project: Project) -> None:
    """The read-only plan and the one under the lock render the same bytes (one stamp)."""
    fw(project)
    cfg = load(project.config_path)
    stamp = context.deployed_at()

    one = release.plan(cfg, None, stamp=stamp)
    two = release.plan(cfg, None, stamp=stamp)

    assert [c.new for c in one.changes] == [c.new for c in two.changes]


def test_stamp_helpers(tmp_path: Path) -> None:
    """DEPLOYMENT_DATE follows deployed_at unless pinned; restamp accepts either form."""
    variables = {"deployed_at": STAMPS[0], "DEPLOYMENT_DATE": "2026-03-01T10:00:00", "x": 1}
    pinned = {**variables, "DEPLOYMENT_DATE": "2025-07-14T16:31:49.225298"}

    again = context.restamp(variables, "2026-03-02T10:00:00+01:00")
    kept = context.restamp(pinned, "2026-03-02T10:00:00+01:00")

    assert context.stamped(variables) == ("deployed_at", "DEPLOYMENT_DATE")
    assert context.stamped(pinned) == ("deployed_at",)
    assert again == {**variables, "deployed_at": "2026-03-02T10:00:00+01:00",
                     "DEPLOYMENT_DATE": "2026-03-02T10:00:00"}
    assert kept is not None and kept["DEPLOYMENT_DATE"] == pinned["DEPLOYMENT_DATE"]
    assert context.restamp(variables, "2026-99-99T99:99:99") is None
    assert context.digest(variables) == context.digest(again or {})
    assert context.digest(pinned) != context.digest({**pinned, "DEPLOYMENT_DATE": "other"})
