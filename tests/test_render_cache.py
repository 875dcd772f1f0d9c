"""The render cache: an unchanged release compiles nothing, and any input change re-renders."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Project

TEMPLATES = """
[[tool.deploy.templates]]
id = "conf"
source = "tpl/conf.j2"
target = "target/conf"

[[tool.deploy.templates]]
id = "outer"
source = "tpl/outer.j2"
target = "target/outer"
"""


def setup(project: Project) -> None:
    project.configure(TEMPLATES)
    project.write({
        "versions/MEMORY_VERSION": "003\n",
        "tpl/conf.j2": "memory {{ versions.memory }} at {{ deployed_at }}\n",
        "tpl/outer.j2": "outer: {% include 'inner.j2' %}",
        "tpl/inner.j2": "inner v1\n",
    })


def test_unchanged_release_reuses_the_last_render(project: Project) -> None:
    """With nothing changed, the second deploy writes nothing although deployed_at moved."""
    setup(project)
    project.ok("deploy.templates")
    first = (project.target / "conf").read_text()

    out = project.json("deploy.templates")

    assert out["changes"] == []
    assert (project.target / "conf").read_text() == first


def test_a_context_change_renders_again(project: Project) -> None:
    """A version the template reads changes its output on the next deploy."""
    setup(project)
    project.ok("deploy.templates")

    project.ok("versions.bump", "memory")
    out = project.json("deploy.templates", "--id=conf")

    assert [c["action"] for c in out["changes"]] == ["update"]
    assert (project.target / "conf").read_text().startswith("memory 004 at ")


def test_an_included_file_change_renders_again(project: Project) -> None:
    """A template that includes another is always rendered: the include may have changed."""
    setup(project)
    project.ok("deploy.templates")

    project.write({"tpl/inner.j2": "inner v2\n"})
    project.ok("deploy.templates", "--id=outer")

    assert (project.target / "outer").read_text() == "outer: inner v2\n"


def test_a_template_change_renders_again(project: Project) -> None:
    """Editing the template itself re-renders it."""
    setup(project)
    project.ok("deploy.templates")

    project.write({"tpl/conf.j2": "memory={{ versions.memory }}\n"})
    project.ok("deploy.templates", "--id=conf")

    assert (project.target / "conf").read_text() == "memory=003\n"


def test_render_cached_uses_the_hit_only_for_self_contained_templates(tmp_path: Path) -> None:
    """A cache hit is returned as is (no compile); a template that includes others is
    rendered whatever the cache says; the digest ignores deployed_at."""
    from deploy import render

    (tmp_path / "plain.j2").write_text("x={{ x }}\n")
    (tmp_path / "inc.j2").write_text("{% include 'plain.j2' %}")
    plain = render.read_template(tmp_path / "plain.j2")
    inc = render.read_template(tmp_path / "inc.j2")
    seen: list[str] = []

    def lookup(digest: str) -> bytes:
        seen.append(digest)
        return b"from the cache\n"

    hit, digest = render.render_cached(plain, {"x": 1, "deployed_at": "a"}, None, lookup)
    miss, _ = render.render_cached(inc, {"x": 1, "deployed_at": "a"}, None, lookup)

    assert hit == b"from the cache\n" and seen == [digest]
    assert miss == b"x=1\n"
    assert digest == render.context_digest({"x": 1, "deployed_at": "b"})
    assert digest != render.context_digest({"x": 2, "deployed_at": "a"})
