"""The render cache: an unchanged release compiles nothing, and any input change re-renders."""

from __future__ import annotations

from contextlib import closing
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
    from deploy import context, render, rendercache

    (tmp_path / "plain.j2").write_text("x={{ x }}\n")
    (tmp_path / "inc.j2").write_text("{% include 'plain.j2' %}")
    plain = render.read_template(tmp_path / "plain.j2")
    inc = render.read_template(tmp_path / "inc.j2")
    seen: list[str] = []

    def lookup(digest: str) -> bytes:
        seen.append(digest)
        return b"from the cache\n"

    hit, digest = rendercache.render_cached(plain, {"x": 1, "deployed_at": "a"}, None, lookup)
    miss, _ = rendercache.render_cached(inc, {"x": 1, "deployed_at": "a"}, None, lookup)

    assert hit == b"from the cache\n" and seen == [digest]
    assert miss == b"x=1\n"
    assert digest == context.digest({"x": 1, "deployed_at": "b"})
    assert digest != context.digest({"x": 2, "deployed_at": "a"})


def _stored_code(project: Project) -> dict[str, tuple[str, bytes]]:
    import sqlite3

    with closing(sqlite3.connect(project.tree / "index.sqlite")) as db:
        return {p: (k, bytes(c)) for p, k, c in
                db.execute("SELECT path, key, code FROM template_code")}


def test_compiled_code_is_kept_and_never_outlives_its_template(project: Project) -> None:
    """A deploy keeps each template's compiled code in the index; a context change renders
    from it, and an edited template gets new code (the key covers its bytes)."""
    setup(project)
    project.ok("deploy.templates")
    source = str(project.root / "tpl" / "conf.j2")
    first = _stored_code(project)
    assert source in first

    project.ok("versions.bump", "memory")  # the context changes, the template does not
    project.ok("deploy.templates", "--id=conf")
    assert (project.target / "conf").read_text().startswith("memory 004 at ")

    project.write({"tpl/conf.j2": "edited {{ versions.memory }}\n"})
    project.ok("deploy.templates", "--id=conf")

    assert (project.target / "conf").read_text() == "edited 004\n"
    assert _stored_code(project)[source][0] != first[source][0]


def test_damaged_stored_code_is_compiled_again(project: Project) -> None:
    """Stored code that does not unmarshal is ignored, never run and never an error."""
    import sqlite3

    setup(project)
    project.ok("deploy.templates")
    with closing(sqlite3.connect(project.tree / "index.sqlite")) as db, db:
        db.execute("UPDATE template_code SET code = x'00ff00'")

    project.ok("versions.bump", "memory")
    project.ok("deploy.templates", "--id=conf")

    assert (project.target / "conf").read_text().startswith("memory 004 at ")


def test_codes_compile_once_and_reject_a_foreign_key(tmp_path: Path) -> None:
    """In one run a template compiles once however often it renders; stored code under
    another key (another Jinja, Python or template) is not used."""
    import marshal

    from deploy import render
    from deploy.codes import Codes

    (tmp_path / "t.j2").write_text("x={{ x }}\n")
    template = render.read_template(tmp_path / "t.j2")
    other = compile("'not the template'", "t.j2", "eval")
    codes = Codes(lambda path: ("someone else's key", marshal.dumps(other)))

    outputs = [render.render(template, {"x": i}, codes) for i in range(3)]

    assert outputs == [b"x=0\n", b"x=1\n", b"x=2\n"]
    fresh = codes.compiled(tmp_path / "t.j2")
    assert fresh is not None and list(codes.fresh) == [str(tmp_path / "t.j2")]
    reused = Codes(lambda path: (fresh.key, fresh.code))
    assert render.render(template, {"x": 7}, reused) == b"x=7\n"
    assert reused.fresh == {}
