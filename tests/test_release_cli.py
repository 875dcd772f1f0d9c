"""`invoke deploy` as one release: the versions gate comes before any write."""

from __future__ import annotations

from tests.conftest import Project, assert_one_error_line


def test_unmet_requirement_blocks_the_release(project: Project) -> None:
    """A release whose versions do not meet `requires` exits 3 naming the file, writes
    nothing, and goes through once the version is bumped."""
    project.configure("""
        [tool.deploy.versions.requires]
        memory = ">=4"
    """)
    project.write({"bin/tool": "#!/bin/sh\necho v1\n", "versions/MEMORY_VERSION": "003\n",
                   "tpl/CLAUDE.md": "# framework\n"})
    before = project.snapshot()

    blocked = project.invoke("deploy")

    assert blocked.returncode == 3
    assert_one_error_line(blocked.stderr, str(project.root / "versions/MEMORY_VERSION"),
                          "outdated", ">=4")
    assert project.snapshot() == before
    project.ok("versions.bump", "memory")
    out = project.json("deploy")
    assert {c["category"] for c in out["changes"]} == {"scripts", "framework"}
