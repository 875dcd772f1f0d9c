"""Unit tests for deploy.render: strict Jinja2 rendering and the template context."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy import config, context, render, rendercache
from deploy.errors import ConfigError


def template(tmp_path: Path, text: str | bytes, name: str = "t.j2") -> render.Template:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return render.read_template(path)


def test_renders_variables_and_keeps_the_trailing_newline(tmp_path: Path) -> None:
    """Variables are substituted, nothing is escaped and the final newline stays."""
    tpl = template(tmp_path, "name: {{ name }}\nhtml: {{ html }}\n")

    out = render.render(tpl, {"name": "claude", "html": "<b>&</b>"})

    assert out == b"name: claude\nhtml: <b>&</b>\n"


def test_crlf_template_stays_crlf(tmp_path: Path) -> None:
    """A CRLF template renders with CRLF line endings, like the file it came from."""
    tpl = template(tmp_path, b"a: {{ a }}\r\nb\r\n")

    assert render.render(tpl, {"a": 1}) == b"a: 1\r\nb\r\n"


@pytest.mark.parametrize(("text", "line", "name"), [
    pytest.param("one\ntwo\nthree {{ missing }}\n", 3, "missing", id="top-level"),
    pytest.param("{% if True %}\n\n{{ cfg.port }}\n{% endif %}\n", 3, "port", id="attribute"),
    pytest.param("{% for x in items %}{{ x }}{% endfor %}\n", 1, "items", id="loop"),
])
def test_undefined_variable_names_file_line_and_variable(tmp_path: Path, text: str, line: int,
                                                         name: str) -> None:
    """An undefined variable is a ConfigError naming the template file, line and variable."""
    tpl = template(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        render.render(tpl, {"cfg": {}})

    message = str(caught.value)
    assert f"{tpl.path}:{line}:" in message
    assert f"undefined variable {name!r}" in message
    assert caught.value.exit_code == 2


def test_every_undefined_variable_in_one_error_sorted_by_line(tmp_path: Path) -> None:
    """One error names each undefined variable with its line, in line order, whichever the
    render met first; names the template binds (set, for, macro) or guards (is defined,
    default) are not listed."""
    tpl = template(tmp_path, (
        "{% set local = 1 %}{{ local }}\n"
        "{{ zeta }}\n"
        "{% for item in items %}{{ item }} {{ loop.index }}{% endfor %}\n"
        "{% macro m(arg) %}{{ arg }}{% endmacro %}{{ m(1) }}\n"
        "{% if maybe is defined %}{{ maybe }}{% endif %}{{ opt | default('x') }}\n"
        "{{ alpha }} {{ known }} {{ zeta }}\n"))

    with pytest.raises(ConfigError) as caught:
        render.render(tpl, {"known": 1})

    message = str(caught.value)
    assert message.startswith(f"{tpl.path}:2: undefined variable 'zeta'; ")
    found = re.findall(r":(\d+): undefined variable '(\w+)'", message)
    assert found == [("2", "zeta"), ("3", "items"), ("6", "alpha"), ("6", "zeta")]
    assert "tool.deploy.context" in message
    assert "\n" not in message


def test_only_runtime_undefined_errors_keep_jinjas_words(tmp_path: Path) -> None:
    """An attribute missing from a defined value is reported as before, with Jinja's
    words, next to any top-level undefined name of the same template."""
    tpl = template(tmp_path, "{{ cfg.port }}\n{{ gone }}\n")

    with pytest.raises(ConfigError) as caught:
        render.render(tpl, {"cfg": {}})

    assert str(caught.value).startswith(
        f"{tpl.path}:1: undefined variable 'port' ('dict object' has no attribute 'port'); "
        f"{tpl.path}:2: undefined variable 'gone'; ")


def test_undeclared_lists_uses_not_bound_at_that_point(tmp_path: Path) -> None:
    """A loop variable used after its loop, or a name used before its set, is undeclared
    there and only there."""
    from jinja2 import Environment

    text = "{{ x }}\n{% set x = 1 %}{{ x }}\n{% for y in [1] %}{{ y }}{% endfor %}\n{{ y }}\n"

    assert render.undeclared(Environment(), text, {}) == [(1, "x"), (4, "y")]


def test_undefined_variable_in_an_included_template_names_that_file(tmp_path: Path) -> None:
    """An error inside an {% include %} names the included file and its line."""
    (tmp_path / "part.j2").write_text("fine\n{{ nope }}\n")
    tpl = template(tmp_path, "head\n{% include 'part.j2' %}\n")

    with pytest.raises(ConfigError) as caught:
        render.render(tpl, {})

    assert f"{tmp_path / 'part.j2'}:2: undefined variable 'nope'" in str(caught.value)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error is a ConfigError naming the template file and line."""
    tpl = template(tmp_path, "ok\n\nvalue: {{ x + }}\n")

    with pytest.raises(ConfigError) as caught:
        render.render(tpl, {"x": 1})

    assert f"{tpl.path}:3: template syntax error" in str(caught.value)


def test_sandbox_refuses_unsafe_attributes(tmp_path: Path) -> None:
    """The sandbox stops a template from reaching Python internals."""
    tpl = template(tmp_path, "{{ ''.__class__.__mro__[1].__subclasses__() }}\n")

    with pytest.raises(ConfigError) as caught:
        render.render(tpl, {})

    assert str(tpl.path) in str(caught.value)


def test_missing_template_is_a_config_error(tmp_path: Path) -> None:
    """A template source that does not exist is named in a ConfigError."""
    with pytest.raises(ConfigError) as caught:
        render.read_template(tmp_path / "absent.j2")

    assert "absent.j2: template not found" in str(caught.value)


def load(tmp_path: Path, extra: str = "") -> config.Config:
    path = tmp_path / "deploy.toml"
    path.write_text('[tool.deploy]\nstate_dir = "state"\n[tool.deploy.versions]\n'
                    'dir = "versions"\n' + extra)
    return config.load(path, home=tmp_path / "home")


def test_context_reads_versions_framework_version_and_context_keys(tmp_path: Path) -> None:
    """versions are lower-cased from <NAME>_VERSION files, framework_version is VERSION
    stripped, and [tool.deploy.context] keys are passed through."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "MEMORY_VERSION").write_text("004\n")
    (versions / "CLI_VERSION").write_text("  0.7.5  ")
    (versions / "VERSION").write_text("1.2.3\n")
    cfg = load(tmp_path, '[tool.deploy.context]\nproject_name = "demo"\n')

    ctx = context.variables(cfg, "2025-07-14T17:01:56+00:00")

    assert ctx["versions"] == {"memory": "004", "cli": "0.7.5"}
    assert ctx["framework_version"] == "1.2.3"
    assert ctx["project_name"] == "demo"
    assert ctx["deployed_at"] == "2025-07-14T17:01:56+00:00"
    assert "parent_dir" not in ctx


def test_context_without_versions_folder_has_no_versions(tmp_path: Path) -> None:
    """No versions folder: empty versions and no framework_version (an error if used)."""
    cfg = load(tmp_path)

    ctx = context.variables(cfg, context.deployed_at())

    assert ctx["versions"] == {}
    assert "framework_version" not in ctx


def test_context_key_may_not_hide_a_builtin(tmp_path: Path) -> None:
    """A [tool.deploy.context] key named like a built-in variable is refused by name."""
    cfg = load(tmp_path, '[tool.deploy.context]\nversions = "x"\n')

    with pytest.raises(ConfigError) as caught:
        context.variables(cfg, context.deployed_at())

    assert "tool.deploy.context.versions" in str(caught.value)


def test_deployed_at_is_iso_8601(tmp_path: Path) -> None:
    """deployed_at parses as ISO 8601 with an offset and matches the stamp pattern."""
    from datetime import datetime

    stamp = context.deployed_at()

    assert datetime.fromisoformat(stamp).tzinfo is not None
    assert context.STAMP.fullmatch(stamp)


def test_render_stable_keeps_an_earlier_stamp_when_nothing_else_changed(tmp_path: Path) -> None:
    """Re-rendering an unchanged template keeps the earlier deployed_at, so nothing changes."""
    tpl = template(tmp_path, "at {{ deployed_at }}\nv {{ v }}\n")
    first = render.render(tpl, {"deployed_at": "2025-01-01T00:00:00+00:00", "v": 1})

    same = rendercache.render_stable(tpl, {"deployed_at": "2025-02-02T00:00:00+00:00", "v": 1},
                                first)
    changed = rendercache.render_stable(tpl, {"deployed_at": "2025-02-02T00:00:00+00:00", "v": 2},
                                   first)

    assert same == first
    assert changed == b"at 2025-02-02T00:00:00+00:00\nv 2\n"


def test_render_stable_keeps_an_earlier_deployment_date_unless_pinned(tmp_path: Path) -> None:
    """DEPLOYMENT_DATE follows the run stamp like deployed_at; a pinned one is left alone."""
    tpl = template(tmp_path, "at {{ DEPLOYMENT_DATE }}\nv {{ v }}\n")
    old = {"deployed_at": "2025-01-01T00:00:00+01:00", "DEPLOYMENT_DATE": "2025-01-01T00:00:00"}
    new = {"deployed_at": "2025-02-02T00:00:00+01:00", "DEPLOYMENT_DATE": "2025-02-02T00:00:00"}
    first = render.render(tpl, {**old, "v": 1})

    same = rendercache.render_stable(tpl, {**new, "v": 1}, first)
    changed = rendercache.render_stable(tpl, {**new, "v": 2}, first)
    pinned = rendercache.render_stable(
        tpl, {**new, "DEPLOYMENT_DATE": "2024-12-24T18:00:00", "v": 1}, first)

    assert same == first
    assert changed == b"at 2025-02-02T00:00:00\nv 2\n"
    assert pinned == b"at 2024-12-24T18:00:00\nv 1\n"
