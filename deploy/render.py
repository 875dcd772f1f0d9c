"""Rendering Jinja2 templates, strictly, into bytes in memory.

The environment follows copier's strictness: a sandbox, ``StrictUndefined`` (an
undefined variable is an error, never an empty string), ``keep_trailing_newline``
and no autoescaping (these are Markdown and YAML, not HTML). Every error a
template can raise becomes a :class:`ConfigError` naming the template file, the
line and the variable, so a bad template stops a run before anything is written.

Jinja2 is imported inside the functions so that ``invoke --list`` stays fast.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from deploy import fsio
from deploy.codes import Codes
from deploy.errors import ConfigError

UNDEFINED = re.compile(r"'(?P<name>[^']+)' is undefined")
NO_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'")
# Tests and filters that make a name optional where it is used.
GUARDS = {"defined", "undefined", "default", "d"}


class Template(NamedTuple):
    """A template file's bytes and their sha256 (recorded with every render of it)."""

    path: Path
    data: bytes
    sha256: str


def _code_key(template: Template, newline: str) -> str:
    import importlib.util
    import sys

    import jinja2

    digest = hashlib.sha256("\0".join((
        "deploy-render-1", jinja2.__version__, sys.version, importlib.util.MAGIC_NUMBER.hex(),
        "sandboxed strict keep_trailing_newline no-autoescape", repr(newline),
        str(template.path))).encode("utf-8"))
    digest.update(b"\0")
    digest.update(template.data)
    return digest.hexdigest()


def read_template(path: Path, what: str = "template") -> Template:
    """Read a template source whole; a missing or unreadable one is a ConfigError."""
    try:
        data = fsio.read_bytes(path)  # never through a link, never blocking on a FIFO
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: {what} not found") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what}: {_why(err)}") from err
    return Template(path, data, fsio.sha256_bytes(data))


def _why(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "it is a symlink; refusing to follow it (point the config at the file itself)"
    if err.errno in (errno.EISDIR, errno.ENXIO):
        return "not a regular file (a folder, FIFO, socket or device)"
    return err.strerror or str(err)


_LOADER: type | None = None


def folder_loader(root: Path) -> Any:
    """A Jinja loader for ``{% include %}``/``{% import %}`` that stays inside ``root``: no
    ``..``, no symlink at any level below it, no FIFO (a planted link would otherwise
    publish a root-only file through a rendered target)."""
    global _LOADER
    if _LOADER is None:
        import jinja2
        from jinja2.loaders import split_template_path

        class FolderLoader(jinja2.BaseLoader):
            def __init__(self, root: Path) -> None:
                self.root = root

            def get_source(self, environment: jinja2.Environment,
                           template: str) -> tuple[str, str, Callable[[], bool]]:
                pieces = split_template_path(template)  # TemplateNotFound for ".."
                path = self.root
                for piece in pieces:
                    path = path / piece
                    try:
                        st = os.lstat(path)
                    except FileNotFoundError:
                        raise jinja2.TemplateNotFound(template) from None
                    if stat.S_ISLNK(st.st_mode):
                        raise jinja2.TemplateError(
                            f"{path}: included template is a symlink; refusing to follow it "
                            f"out of {self.root}")
                try:
                    data = fsio.read_bytes(path)
                except OSError as err:
                    raise jinja2.TemplateError(f"{path}: cannot read included template: "
                                               f"{_why(err)}") from err
                return data.decode("utf-8"), str(path), lambda: True

        _LOADER = FolderLoader
    return _LOADER(root)


def _template_line(tb: TracebackType | None, default: int | None) -> tuple[str | None, int | None]:
    """The innermost template frame of a render traceback: (file, line).

    Jinja rewrites tracebacks so that template code shows as frames whose file
    name is the template's and whose line is the template line.
    """
    where: tuple[str | None, int | None] = (None, default)
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return where


def _undefined_name(message: str) -> str:
    match = UNDEFINED.search(message) or NO_ATTRIBUTE.search(message)
    return match.group("name") if match else "?"


def _undefined_message(env: Any, template: Template, source: str,
                       variables: Mapping[str, Any], err: Exception) -> ConfigError:
    """One message naming every undefined variable of the template, each with its line.

    Rendering stops at the first undefined name; the template's syntax tree names the
    rest, so one run shows them all. The name that failed comes from the render (its
    file and line, and Jinja's words when it is an attribute or an included file's).
    """
    detail = getattr(err, "message", None) or str(err)
    name = _undefined_name(detail)
    file, line = _template_line(err.__traceback__, None)
    path = str(template.path)
    found = undeclared(env, source, variables, path)
    entries = {(path, at, missing): f"{path}:{at}: undefined variable {missing!r}"
               for at, missing in found}
    failed = (file or path, line or 0, name)
    if failed not in entries:
        entries[failed] = f"{file or path}:{line or '?'}: undefined variable {name!r} ({detail})"
    # Sorted by line, the template's own first; an included file's name follows.
    ordered = sorted(entries, key=lambda k: (k[0] != path, k[1], k[2]))
    message = "; ".join(entries[key] for key in ordered)
    if found:
        names = list(dict.fromkeys(missing for _, missing in found))
        message += (f"; define {'it' if len(names) == 1 else 'them'} in [tool.deploy.context] "
                    f"({names[0]} = \"{{{{{names[0]}}}}}\" keeps a placeholder as written)")
    # The annotation points at the first of them (issue 14).
    first_file, first_line, _ = ordered[0]
    return ConfigError(message).at(first_file, first_line or None)


def undeclared(env: Any, text: str, variables: Mapping[str, Any],
               filename: str | None = None) -> list[tuple[int, str]]:
    """(line, name) of every use of a variable that neither ``variables`` nor the template
    itself (set, for, macro, with, import) defines, sorted by line.

    A name the template tests with ``is defined`` or passes to ``default`` somewhere is
    optional there and never listed; Jinja's own analysis
    (``jinja2.meta.find_undeclared_variables``) must agree on each name.
    """
    from jinja2 import meta, nodes

    tree = env.parse(text, None, filename)
    names = meta.find_undeclared_variables(tree) - set(variables) - set(env.globals)
    if not names:
        return []
    guarded = {n.node.name for n in tree.find_all((nodes.Test, nodes.Filter))
               if n.name in GUARDS and isinstance(n.node, nodes.Name)}
    uses: set[tuple[int, str]] = set()
    _loads(tree, frozenset(), uses)
    return sorted(u for u in uses if u[1] in names and u[1] not in guarded)


def _stored(target: Any) -> set[str]:
    from jinja2 import nodes

    if target is None:
        return set()
    # find_all looks below a node only: a plain target is a Name itself.
    found = [target] if isinstance(target, nodes.Name) else target.find_all(nodes.Name)
    return {n.name for n in found}


def _loads(node: Any, bound: frozenset[str], uses: set[tuple[int, str]]) -> None:
    """Collect the variable loads under ``node`` that ``bound`` does not cover."""
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        if node.ctx == "load" and node.name not in bound:
            uses.add((node.lineno, node.name))
        return
    if isinstance(node, nodes.For):
        _loads(node.iter, bound, uses)
        inner = bound | _stored(node.target) | {"loop"}
        for part in (node.test, *node.body):
            if part is not None:
                _loads(part, inner, uses)
        _body(node.else_, bound, uses)
        return
    if isinstance(node, (nodes.Macro, nodes.CallBlock)):
        if isinstance(node, nodes.CallBlock):
            _loads(node.call, bound, uses)
        for default in node.defaults:
            _loads(default, bound, uses)
        args = {a.name for a in node.args} | {"caller", "varargs", "kwargs"}
        _body(node.body, bound | args, uses)
        return
    if isinstance(node, nodes.With):
        for value in node.values:
            _loads(value, bound, uses)
        _body(node.body, bound | {n for t in node.targets for n in _stored(t)}, uses)
        return
    for field in node.fields:
        child = getattr(node, field, None)
        if isinstance(child, list):
            _body(child, bound, uses)
        elif isinstance(child, nodes.Node):
            _loads(child, bound, uses)


def _body(items: list[Any], bound: frozenset[str], uses: set[tuple[int, str]]) -> None:
    """A list of nodes in order: a set, macro or import binds its names for what follows."""
    from jinja2 import nodes

    for item in items:
        if not isinstance(item, nodes.Node):
            continue
        _loads(item, bound, uses)
        if isinstance(item, (nodes.Assign, nodes.AssignBlock)):
            bound = bound | _stored(item.target)
        elif isinstance(item, nodes.Macro):
            bound = bound | {item.name}
        elif isinstance(item, nodes.Import):
            bound = bound | {item.target}
        elif isinstance(item, nodes.FromImport):
            bound = bound | {n if isinstance(n, str) else n[1] for n in item.names}


def render(template: Template, variables: Mapping[str, Any], codes: Codes | None = None) -> bytes:
    """Render ``template`` with ``variables`` to UTF-8 bytes, or raise ConfigError naming
    the file, line and cause; ``codes`` saves compiling a template compiled before."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    path = template.path
    # Keep CRLF templates CRLF: Jinja would otherwise normalise every newline to LF.
    newline = "\r\n" if b"\r\n" in template.data else "\n"
    env = SandboxedEnvironment(
        loader=folder_loader(path.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        newline_sequence=newline,
    )
    try:
        text = template.data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: template is not UTF-8 text (byte {err.start})") from err
    try:
        # Compile from the bytes we hashed, under the file's own name, so that error
        # tracebacks and messages name the template file.
        key = _code_key(template, newline) if codes is not None else ""
        code = codes.get(str(path), key) if codes is not None else None
        if code is None:
            code = env.compile(text, path.name, str(path))
            if codes is not None:
                codes.put(str(path), key, code)
        compiled = env.template_class.from_code(env, code, env.make_globals(None), None)
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(
            f"{path}:{err.lineno}: template syntax error: {err.message}").at(
                path, err.lineno) from err
    try:
        return compiled.render(**variables).encode("utf-8")
    except jinja2.UndefinedError as err:
        raise _undefined_message(env, template, text, variables, err) from err
    except jinja2.TemplateSyntaxError as err:
        # Raised by an {% include %}d template: it names its own file.
        raise ConfigError(f"{err.filename or path}:{err.lineno}: template syntax error: "
                          f"{err.message}").at(err.filename or path, err.lineno) from err
    except jinja2.TemplateNotFound as err:
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: included template {err.name!r} not "
                          f"found beside {path}").at(file or path, line) from err
    except jinja2.TemplateError as err:
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: template error: {err}").at(
            file or path, line) from err
    except Exception as err:
        # Whatever else a template raises (a division by zero, a bad filter argument) is
        # the template's fault: name it like the rest, never a traceback.
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: template failed: "
                          f"{type(err).__name__}: {err}").at(file or path, line) from err
